package bundle

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// fuzzLimits are small, so that every input is decided within a few MiB.
var fuzzLimits = Limits{
	MaxMembers:    50,
	MaxMemberSize: 256 << 10,
	MaxTotal:      1 << 20,
	MaxManifest:   64 << 10,
	MaxWindow:     1 << 20,
	CacheMember:   16 << 10,
	CacheTotal:    64 << 10,
}

// fuzzMaxAlloc bounds what one Open, or one ReadFile, may allocate with
// fuzzLimits: the decoder's window and buffers, a PAX header of up to 1 MiB
// (archive/tar's own limit), the cache and the index.
const fuzzMaxAlloc = 16 << 20

// FuzzOpen feeds Open arbitrary bytes: it must never panic, must refuse with
// one of the package's errors, and must stay within bounded memory. What it
// accepts must be consistent: every member readable, at its size.
func FuzzOpen(f *testing.F) {
	f.Add(validBundle(f))
	for _, c := range hostileCases() {
		if data := c.data(f); len(data) <= 100_000 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, partial := range []bool{false, true} {
			lim := fuzzLimits
			lim.Partial = partial
			var b *Bundle
			var err error
			if n := allocated(func() { b, err = OpenReader(bytes.NewReader(data), int64(len(data)), lim) }); n > fuzzMaxAlloc {
				t.Errorf("Open(partial=%v) allocated %d bytes", partial, n)
			}
			if err != nil {
				if !classified(err) {
					t.Errorf("Open(partial=%v): %v wraps none of the package's errors", partial, err)
				}
				if strings.ContainsAny(err.Error(), "\n\r") {
					t.Errorf("Open: error %q is not one line", err)
				}
				continue
			}
			if b.Manifest() == nil || b.Manifest().Format != Format {
				t.Fatalf("Open accepted a bundle without a valid manifest")
			}
			if d := b.Damage(); d != nil && (!partial || !errors.Is(d, ErrCorrupt)) {
				t.Errorf("Damage() = %v (partial=%v)", d, partial)
			}
			checkMembers(t, b)
			b.Close()
		}
	})
}

// classified reports whether err wraps one of the package's errors.
func classified(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// checkMembers reads every member of b back, through Stat and ReadFile, and
// walks its directories.
func checkMembers(t *testing.T, b *Bundle) {
	t.Helper()
	seen := map[string]bool{}
	for i, m := range b.Members() {
		if !ValidName(m.Name) || seen[m.Name] || m.Index != i {
			t.Fatalf("member %d %q: bad name or index", i, m.Name)
		}
		seen[m.Name] = true
		fi, err := b.Stat(m.Name)
		if err != nil || fi.Size() != m.Size || !fi.Mode().IsRegular() {
			t.Fatalf("Stat(%q) = %v, %v", m.Name, fi, err)
		}
		var data []byte
		if n := allocated(func() { data, err = b.ReadFile(m.Name) }); n > fuzzMaxAlloc+uint64(m.Size) {
			t.Errorf("ReadFile(%q) allocated %d bytes", m.Name, n)
		}
		if err != nil || int64(len(data)) != m.Size {
			t.Fatalf("ReadFile(%q) = %d bytes, %v; want %d", m.Name, len(data), err, m.Size)
		}
	}
	walked := 0
	err := fs.WalkDir(b, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			walked++
			if !seen[p] {
				t.Errorf("WalkDir found %q, which is not a member", p)
			}
		}
		return nil
	})
	if err != nil || walked != len(seen) {
		t.Errorf("WalkDir: %d files, %v; want %d", walked, err, len(seen))
	}
}
