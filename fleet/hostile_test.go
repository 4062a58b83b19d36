package fleet_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/fleet"
)

// listing is a Source whose listing the test writes: keys no real store
// would hand out, each serving the bytes of a real capture.
type listing struct {
	objs []fleet.Object
	data []byte
}

func (l listing) List(context.Context) ([]fleet.Object, error) { return l.objs, nil }
func (l listing) Checksum(_ context.Context, o fleet.Object) (string, error) {
	return o.SHA256, nil
}
func (l listing) Open(context.Context, fleet.Object) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.data)), nil
}
func (l listing) String() string { return "hostile" }

var hostileKeys = []string{
	"../../../escape.tar.zst",
	"prod/../../escape.tar.zst",
	"/etc/escape.tar.zst",
	"prod/" + strings.Repeat("h", 5000) + "/long.tar.zst",
	"prod/\xff\xfe\x00host/not-utf8.tar.zst",
	"prod/web1/\x1b[31mred.tar.zst",
	"prod/./.. /x.tar.zst",
}

// TestHostileKeys: whatever the keys, every file the run leaves is a
// hash-named cache entry under the cache directory, nothing is written
// beside it, and the hosts shown are safe segments.
func TestHostileKeys(t *testing.T) {
	data, err := os.ReadFile(fixture("synflood-cookies-off-v4"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	cacheDir := filepath.Join(root, "deep", "cache")
	tmp := filepath.Join(root, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	var objs []fleet.Object
	for i, k := range hostileKeys {
		objs = append(objs, fleet.Object{Key: k, Size: int64(len(data)), Version: "v" + strings.Repeat("/..", i)})
	}
	src := listing{objs: objs, data: data}
	results, st, err := fleet.Run(context.Background(), src, fleet.Options{Cache: fleet.Cache{Dir: cacheDir}, TempDir: tmp, Jobs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if st.Failed != 0 || st.Analyzed+st.Cached != len(hostileKeys) {
		t.Fatalf("stats %+v, want every hostile key read", st)
	}
	name := regexp.MustCompile(`^(refs/[0-9a-f]{2}/[0-9a-f]{64}|reports/[0-9a-f]{2}/[0-9a-f]{64}\.json)$`)
	files := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(cacheDir, p)
		if !name.MatchString(filepath.ToSlash(rel)) {
			t.Errorf("the run left %s", p)
		}
		files++
		return nil
	})
	// One report (one content) and a ref per key.
	if files != 1+len(hostileKeys) {
		t.Errorf("%d files in the cache, want %d", files, 1+len(hostileKeys))
	}
	if _, err := os.Lstat(filepath.Join(root, "..", "escape.tar.zst")); err == nil {
		t.Errorf("a key wrote outside the test's directory")
	}
	seg := regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)
	rep := fleet.Build("hostile", results, fleet.Filter{})
	for _, h := range rep.Hosts {
		if !seg.MatchString(h.Host) || h.Host == "." || h.Host == ".." {
			t.Errorf("host %q shown as is", h.Host)
		}
	}
	var b bytes.Buffer
	if err := fleet.RenderText(&b, rep); err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(b.Bytes(), "\x1b\x00") {
		t.Errorf("the text report carries a control character of a key")
	}
}

// TestCorruptCacheEntry: a cache entry that is not a summary (truncated,
// edited, another build's) is analyzed again and rewritten; a bundle
// whose bytes do not match its store's checksum is a failure, not a
// cached lie.
func TestCorruptCacheEntry(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "prod", "web1")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fixture("healthy-busy"))
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(host, "a.tar.zst")
	if err := os.WriteFile(b, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cache := fleet.Cache{Dir: t.TempDir()}
	src := fleet.NewDirSource(dir)
	res, st, err := fleet.Run(context.Background(), src, fleet.Options{Cache: cache})
	if err != nil || st.Analyzed != 1 {
		t.Fatalf("cold: %+v, %v", st, err)
	}
	sum := res[0].Summary.SHA256
	for _, junk := range []string{"", "{", `{"format":1,"sha256":"00"}`, `{"format":999}`} {
		if err := os.WriteFile(cache.SummaryPath(sum), []byte(junk), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, st, err := fleet.Run(context.Background(), src, fleet.Options{Cache: cache}); err != nil || st.Analyzed != 1 {
			t.Errorf("cache entry %q: %+v, %v; want it analyzed again", junk, st, err)
		}
	}
	if _, st, _ := fleet.Run(context.Background(), src, fleet.Options{Cache: cache}); st.Analyzed != 0 || st.Cached != 1 {
		t.Errorf("after the rewrite: %+v, want it from the cache", st)
	}

	// A sidecar that disagrees with the bytes.
	lie := strings.Repeat("ab", 32)
	if err := os.WriteFile(b+".sha256", []byte(lie+"  a.tar.zst\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, st, _ = fleet.Run(context.Background(), src, fleet.Options{Cache: cache})
	if st.Failed != 1 || res[0].Err == nil {
		t.Errorf("a wrong sidecar: %+v, want the bundle failed", st)
	}
	if _, ok := cache.Summary(lie); ok {
		t.Errorf("a summary was cached under the lie")
	}
}

// FuzzCachePaths: whatever an object's origin, key, version, size and
// claimed checksum, its cache paths are hash-named files under the cache
// directory (none for an object without a version), and its host is one
// safe segment.
func FuzzCachePaths(f *testing.F) {
	for _, k := range hostileKeys {
		f.Add(k, "etag", int64(1), strings.Repeat("A", 64))
	}
	f.Add("prod/web1/x.tar.zst", "", int64(-1), "../"+strings.Repeat("a", 61))
	dir := "/cache/dir"
	ref := regexp.MustCompile(`^/cache/dir/refs/[0-9a-f]{2}/[0-9a-f]{64}$`)
	rep := regexp.MustCompile(`^/cache/dir/reports/[0-9a-f]{2}/[0-9a-f]{64}\.json$`)
	seg := regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)
	f.Fuzz(func(t *testing.T, key, version string, size int64, sum string) {
		c := fleet.Cache{Dir: dir}
		p := c.RefPath(fleet.Object{Key: key, Origin: version + key, Version: version, Size: size})
		if version == "" && p != "" || version != "" && !ref.MatchString(p) {
			t.Errorf("ref path %q of version %q", p, version)
		}
		if p := c.SummaryPath(sum); p != "" && !rep.MatchString(p) {
			t.Errorf("summary path %q", p)
		}
		if h := fleet.HostOf(key); h != "" && (!seg.MatchString(h) || h == "." || h == "..") {
			t.Errorf("host %q of key %q", h, key)
		}
	})
}

// TestNameTime: the capture time in a bundle's name, as capture names it
// (snapdiag-HOST-YYYYMMDDTHHMMSSZ[-N].tar.zst), on hostile and odd names.
func TestNameTime(t *testing.T) {
	at := time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		key  string
		want time.Time
		ok   bool
	}{
		{"p/h/snapdiag-web1-20261115T120000Z.tar.zst", at, true},
		{"p/h/snapdiag-web-1-eu-20261115T120000Z.tar.zst", at, true},
		{"p/h/snapdiag-db-2-20261115T120000Z-100.tar.zst", at, true},
		{"p/h/snapdiag-x-20261115T120000Z-3.tar.zst", at, true},
		{"p/h/snapdiag-20261115T120000Z-20261115T120000Z.tar.zst", at, true},
		{"p/h/snapdiag-20261115-20261115T120000Z.tar.zst", at, true},
		{"snapdiag-web1-20261115T120000Z.tar.zst", at, true},
		{"p/h/snapdiag-web-20261115T120000Z-3-20250101T000000Z.tar.zst", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"p/h/snapdiag-web1-20261315T120000Z.tar.zst", time.Time{}, false},
		{"p/h/snapdiag-web1-20261115T250000Z.tar.zst", time.Time{}, false},
		{"p/h/snapdiag-web1-20261131T120000Z.tar.zst", time.Time{}, false},
		{"p/h/snapdiag-web1-20261115T120060Z.tar.zst", time.Time{}, false},
		{"p/h/snapdiag-web1-20261115T120000.tar.zst", time.Time{}, false},
		{"p/h/snapdiag-web1-20261115T120000Z.tar", time.Time{}, false},
		{"p/h/snapdiag-web1-20261115T120000Z-.tar.zst", time.Time{}, false},
		{"p/h/snapdiag-web1-20261115T120000Z-x.tar.zst", time.Time{}, false},
		{"p/snapdiag-web1-20261115T120000Z.tar.zst/other.tar.zst", time.Time{}, false},
		{"p/h/snapdiag-x-20261115T120000Z-1234567.tar.zst", time.Time{}, false},
		{"p/h/snapdiag--20261115T120000Z.tar.zst", time.Time{}, false},
		{"p/h/snapdiag-20261115T120000Z.tar.zst", time.Time{}, false},
		{"p/h/snapdiag-web1-00000000T000000Z.tar.zst", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, ok := fleet.NameTime(tc.key)
		if ok != tc.ok || !got.Equal(tc.want) || ok && got.Location() != time.UTC {
			t.Errorf("NameTime(%q) = %v, %v; want %v, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}
