package redact

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// A bundle written through Filter, as capture --redact writes it, is the
// bundle Bundle makes of the unredacted one: the same members, byte for
// byte, and the same manifest but for the redaction's duration. Small
// members go through WriteFile, large ones through Create, as collectors
// write them.
func TestFilterMatchesBundle(t *testing.T) {
	const src = "../fixtures/synflood-cookies-off-v4/bundle.tar.zst"
	k := testKey(t, "filter")
	want, err := New(k).Bundle(src, t.TempDir(), "want.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Open(src, bundle.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := b.Manifest()
	w, err := bundle.NewWriter(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	w.SetFilter(New(k).Filter([]string{m.Host.Hostname, nodename(b)}, m.Host.Machine))
	for _, mi := range b.Members() {
		if mi.Name == bundle.PathManifest {
			continue
		}
		data, err := fs.ReadFile(b, mi.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) < 4096 {
			err = w.WriteFile(mi.Name, data)
		} else {
			var f io.WriteCloser
			if f, err = w.Create(mi.Name); err == nil {
				// In odd pieces, as a stream is written.
				for r := bytes.NewReader(data); r.Len() > 0 && err == nil; {
					_, err = io.CopyN(f, r, 1000)
					if err == io.EOF {
						err = nil
					}
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		}
		if err != nil {
			t.Fatalf("write %s: %v", mi.Name, err)
		}
	}
	got, err := w.Commit("snapdiag-vm-20260101T000000Z.tar.zst", m)
	if err != nil {
		t.Fatal(err)
	}
	if name := New(k).FileName(m); filepath.Base(got) != name || strings.Contains(name, m.Host.Hostname) {
		t.Errorf("filtered bundle named %s, want %s, with the host's pseudonym", got, name)
	}
	wm, gm := testutil.ReadBundle(t, want.Path), testutil.ReadBundle(t, got)
	for _, mm := range []map[string][]byte{wm, gm} {
		rm, err := bundle.ParseManifest(mm[bundle.PathManifest])
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ManifestInfo(rm); !ok {
			t.Fatal("no redaction info in the manifest")
		}
		rm.Collector(CollectorName).DurationMS = 0
		if mm[bundle.PathManifest], err = json.Marshal(rm); err != nil {
			t.Fatal(err)
		}
	}
	if d := cmp.Diff(wm, gm); d != "" {
		t.Errorf("filtered bundle differs from the redacted copy (-Bundle +Filter):\n%s", d)
	}
}
