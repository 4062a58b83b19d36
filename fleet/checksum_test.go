package fleet_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/fleet"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/ship"
)

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// checkMislabel runs src twice over cache: the first run, before the
// mislabeled object exists, caches the summary of the critical bundle
// under web1; the second must report db1's object, which claims that
// bundle's checksum but holds other bytes, as a checksum failure and never
// show web1's findings under db1.
func checkMislabel(t *testing.T, src fleet.Source, cache fleet.Cache, addLiar func()) {
	t.Helper()
	if _, st, err := fleet.Run(context.Background(), src, fleet.Options{Cache: cache, Jobs: 1}); err != nil || st.Analyzed != 1 {
		t.Fatalf("first run: %+v, %v; want web1's bundle analyzed", st, err)
	}
	addLiar()
	results, st, err := fleet.Run(context.Background(), src, fleet.Options{Cache: cache, Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st.Listed != 2 || st.Failed != 1 || st.Corrupt != 1 || st.Cached != 1 {
		t.Errorf("second run: %+v, want web1 from the cache and db1 failed as corrupt", st)
	}
	for _, r := range results {
		if r.Host() != "db1" {
			continue
		}
		var ce *fleet.ChecksumError
		if !errors.As(r.Err, &ce) || !errors.Is(r.Err, bundle.ErrCorrupt) {
			t.Errorf("db1: error %v, summary %+v; want a ChecksumError, a bundle.ErrCorrupt", r.Err, r.Summary)
		}
	}
	rep := fleet.Build(src.String(), results, fleet.Filter{})
	for _, h := range rep.Hosts {
		if h.Host == "db1" {
			t.Errorf("db1 shown with %d bundles and %d incidents: another bundle's findings under its name", h.Bundles, h.Incidents)
		}
	}
	if len(rep.Failed) != 1 || rep.Failed[0].Kind != fleet.FailChecksum || fleet.HostOf(rep.Failed[0].Key) != "db1" {
		t.Errorf("failed %+v, want db1's object as %s", rep.Failed, fleet.FailChecksum)
	}
	if rep.Exit != 1 {
		t.Errorf("exit %d, want 1 (a bundle could not be read)", rep.Exit)
	}
	// And the cache did not learn the lie: a third run fails it again.
	if _, st, _ := fleet.Run(context.Background(), src, fleet.Options{Cache: cache}); st.Corrupt != 1 {
		t.Errorf("third run: %+v, want db1 failed again", st)
	}
}

// TestClaimedChecksumIsChecked: an object whose store claims another
// bundle's checksum (a sidecar, object metadata) is read, found not to be
// that bundle, and failed as corrupt; the cache is looked up only by the
// checksum of the bytes read.
func TestClaimedChecksumIsChecked(t *testing.T) {
	critical, err := os.ReadFile(fixture("synflood-cookies-off-v4"))
	if err != nil {
		t.Fatal(err)
	}
	healthy, err := os.ReadFile(fixture("healthy-busy"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(p string, data []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("sidecar", func(t *testing.T) {
		dir := t.TempDir()
		web1 := filepath.Join(dir, "prod", "web1", "a.tar.zst")
		write(web1, critical)
		write(web1+ship.SHA256Suffix, []byte(sha(critical)+"  a.tar.zst\n"))
		checkMislabel(t, fleet.NewDirSource(dir), fleet.Cache{Dir: t.TempDir()}, func() {
			db1 := filepath.Join(dir, "prod", "db1", "b.tar.zst")
			write(db1, healthy)
			write(db1+ship.SHA256Suffix, []byte(sha(critical)+"  b.tar.zst\n"))
		})
	})

	t.Run("s3", func(t *testing.T) {
		srv := testutil.StartS3(t)
		srv.Bucket("diag")
		o := ship.S3Options{Getenv: srv.Getenv()}
		tg, err := ship.ParseTarget("s3://diag/prod")
		if err != nil {
			t.Fatal(err)
		}
		p, err := ship.Open(tg, o)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "a.tar.zst")
		write(f, critical)
		for _, host := range []string{"web1", "db1"} {
			key, err := p.KeyFor(host, f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Push(context.Background(), f, key); err != nil {
				t.Fatal(err)
			}
		}
		// db1's object is pushed, then its bytes replaced behind the
		// store's back: its metadata still claims the critical bundle.
		db1 := filepath.Join(srv.Root, "diag", "prod", "db1", "a.tar.zst")
		// The first run sees web1 only: db1's bytes are gone, its
		// metadata (versitygw keeps it apart) is not.
		if err := os.Remove(db1); err != nil {
			t.Fatal(err)
		}
		src, err := fleet.Open("s3://diag/prod", o)
		if err != nil {
			t.Fatal(err)
		}
		checkMislabel(t, src, fleet.Cache{Dir: t.TempDir()}, func() { write(db1, healthy) })
	})
}

// TestSameBytesTwoKeys: one bundle under two hosts' keys is analyzed once
// and shown under each key's own host.
func TestSameBytesTwoKeys(t *testing.T) {
	data, err := os.ReadFile(fixture("synflood-cookies-off-v4"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, h := range []string{"web1", "web2"} {
		p := filepath.Join(dir, "prod", h, "x.tar.zst")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	results, st, err := fleet.Run(context.Background(), fleet.NewDirSource(dir), fleet.Options{Cache: fleet.Cache{Dir: t.TempDir()}, Jobs: 1})
	if err != nil || st.Analyzed != 1 || st.Cached != 1 {
		t.Fatalf("%+v, %v; want one analysis, its twin from the cache", st, err)
	}
	rep := fleet.Build("twins", results, fleet.Filter{})
	if len(rep.Hosts) != 2 || rep.Hosts[0].Host != "web1" || rep.Hosts[1].Host != "web2" || rep.Exit != analyze.ExitCritical {
		t.Errorf("hosts %+v, exit %d; want web1 and web2, critical", rep.Hosts, rep.Exit)
	}
	// Both keys carry the summary of the bytes they hold, the twin's taken
	// from the cache under that checksum, and each has its own load row.
	keys := map[string]bool{}
	for _, r := range results {
		if r.Summary.SHA256 != sha(data) || !r.Summary.HasFindings {
			t.Errorf("%s: summary of %s (findings %v), want that of its bytes %s", r.Object.Key, r.Summary.SHA256, r.Summary.HasFindings, sha(data))
		}
		keys[r.Object.Key] = true
	}
	for _, l := range rep.Load {
		delete(keys, l.Key)
	}
	if len(rep.Load) != 2 || len(keys) != 0 {
		t.Errorf("load rows %+v, want one for each key", rep.Load)
	}
}

// TestReplacedBundleIsReadAgain: a cached object's identity is its
// source's (the tree's absolute path, the store's endpoint and bucket) and
// its file's (inode, change time) besides key, size and modification time:
// the same key under another tree sharing the cache, or a bundle replaced
// in place with its size and modification time restored (rsync -a, cp -p,
// tar x), is read again, never shown with the old bundle's report.
func TestReplacedBundleIsReadAgain(t *testing.T) {
	critical, err := os.ReadFile(fixture("synflood-cookies-off-v4"))
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, len(critical))
	for i := range garbage {
		garbage[i] = byte(i)
	}
	mtime := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)
	put := func(root string, data []byte) {
		t.Helper()
		p := filepath.Join(root, "prod", "web1", "snapdiag-web1-20261102T030000Z.tar.zst")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	cache := fleet.Cache{Dir: t.TempDir()}
	run := func(root string) (fleet.Result, fleet.Stats) {
		t.Helper()
		results, st, err := fleet.Run(context.Background(), fleet.NewDirSource(root), fleet.Options{Cache: cache, Jobs: 1})
		if err != nil || len(results) != 1 {
			t.Fatalf("run over %s: %d results, %v", root, len(results), err)
		}
		return results[0], st
	}
	a := t.TempDir()
	put(a, critical)
	if r, st := run(a); st.Analyzed != 1 || r.Summary.Worst != analyze.Critical {
		t.Fatalf("first run: %+v, worst %v; want the critical bundle analyzed", st, r.Summary.Worst)
	}
	if _, st := run(a); st.Cached != 1 || st.Downloaded != 0 {
		t.Fatalf("second run: %+v, want it from the cache unread", st)
	}

	b := t.TempDir()
	put(b, garbage)
	if r, st := run(b); r.Err == nil || st.Downloaded != 1 {
		t.Errorf("same key in another tree: %+v, worst %v; want it read and failed (not a bundle)", st, r.Summary.Worst)
	}

	put(a, garbage)
	if r, st := run(a); r.Err == nil || st.Downloaded != 1 {
		t.Errorf("replaced in place: %+v, worst %v; want it read and failed (not a bundle)", st, r.Summary.Worst)
	}
}
