package watch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/ship"
)

const testHost = "web-1.example"

// put creates dir/name with size bytes.
func put(t *testing.T, dir, name string, size int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// bundleName is host's bundle at minute m of a fixed day, with an optional
// same-second suffix.
func bundleName(host string, m int, suffix string) string {
	ts := time.Date(2026, 3, 1, 10, m, 0, 0, time.UTC).Format(bundleTimeLayout)
	return "snapdiag-" + host + "-" + ts + suffix + ".tar.zst"
}

func TestBundlePattern(t *testing.T) {
	re := BundlePattern(testHost)
	for name, want := range map[string]bool{
		"snapdiag-web-1.example-20260301T100000Z.tar.zst":      true,
		"snapdiag-web-1.example-20260301T100000Z-2.tar.zst":    true,
		"snapdiag-web-1.example-20260301T100000Z.tar.zst.part": false,
		"snapdiag-web-1.example-20260301T100000Z.tar":          false,
		"snapdiag-web-1xexample-20260301T100000Z.tar.zst":      false, // the dot is literal
		"snapdiag-web-2.example-20260301T100000Z.tar.zst":      false, // another host
		"snapdiag-web-1.example-2026031T100000Z.tar.zst":       false,
		"snapdiag-web-1.example-20260301T100000Z-x.tar.zst":    false,
		"xsnapdiag-web-1.example-20260301T100000Z.tar.zst":     false,
		".snapdiag-tmp-bundle-123":                             false,
		"notes.txt":                                            false,
	} {
		if got := re.MatchString(name); got != want {
			t.Errorf("%s: match %v, want %v", name, got, want)
		}
	}
	// The host is spelled as bundle.FileName spells it.
	if !BundlePattern("a b/c").MatchString("snapdiag-a_b_c-20260301T100000Z.tar.zst") {
		t.Error("sanitized host name not matched")
	}
}

// TestRetention: keep and max-bytes delete this host's oldest bundles and
// nothing else: not other hosts' bundles, not foreign files, not symlinks
// (nor what they point to), not directories with a bundle's name.
func TestRetention(t *testing.T) {
	foreign := []string{
		"notes.txt",
		"snapdiag-other-host-20200101T000000Z.tar.zst", // another host's, very old
		"snapdiag-" + testHost + "-20200101T000000Z.tar.zst.bak",
		".snapdiag.lock",
	}
	setup := func(t *testing.T) (dir, outside string) {
		dir = t.TempDir()
		outside = t.TempDir()
		for m := range 6 { // minutes 0..5, 100 bytes each; minute 5 is the newest
			put(t, dir, bundleName(testHost, m, ""), 100)
		}
		put(t, dir, bundleName(testHost, 5, "-2"), 100) // newest of all
		for _, f := range foreign {
			put(t, dir, f, 1000)
		}
		// An old-looking "bundle" that is a symlink to a file outside, and a
		// directory with a bundle's name.
		put(t, outside, "precious", 10)
		if err := os.Symlink(filepath.Join(outside, "precious"), filepath.Join(dir, bundleName(testHost, 0, "-9"))); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, bundleName(testHost, 0, "-8")), 0o700); err != nil {
			t.Fatal(err)
		}
		return dir, outside
	}
	untouched := append([]string{bundleName(testHost, 0, "-8"), bundleName(testHost, 0, "-9")}, foreign...)

	tests := []struct {
		name    string
		r       Retention
		protect string
		kept    []string // this host's bundles left
	}{
		{name: "keep 3", r: Retention{Keep: 3}, kept: []string{
			bundleName(testHost, 4, ""), bundleName(testHost, 5, ""), bundleName(testHost, 5, "-2")}},
		{name: "max bytes 250", r: Retention{MaxBytes: 250}, kept: []string{
			bundleName(testHost, 5, ""), bundleName(testHost, 5, "-2")}},
		{name: "both, the tighter wins", r: Retention{Keep: 4, MaxBytes: 350}, kept: []string{
			bundleName(testHost, 4, ""), bundleName(testHost, 5, ""), bundleName(testHost, 5, "-2")}},
		{name: "newest kept even over max bytes", r: Retention{MaxBytes: 10}, kept: []string{bundleName(testHost, 5, "-2")}},
		{name: "protected bundle kept", r: Retention{Keep: 1}, protect: "/some/dir/" + bundleName(testHost, 2, ""), kept: []string{
			bundleName(testHost, 2, ""), bundleName(testHost, 5, "-2")}},
		{name: "no bounds", r: Retention{}, kept: []string{
			bundleName(testHost, 0, ""), bundleName(testHost, 1, ""), bundleName(testHost, 2, ""), bundleName(testHost, 3, ""),
			bundleName(testHost, 4, ""), bundleName(testHost, 5, ""), bundleName(testHost, 5, "-2")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, outside := setup(t)
			if _, _, err := tt.r.Apply(dir, testHost, tt.protect); err != nil {
				t.Fatal(err)
			}
			want := append(append([]string(nil), tt.kept...), untouched...)
			sort.Strings(want)
			if diff := cmp.Diff(want, names(t, dir)); diff != "" {
				t.Errorf("directory after retention (-want +got):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(outside, "precious")); err != nil {
				t.Errorf("symlink target: %v", err)
			}
			for _, f := range foreign {
				if info, err := os.Stat(filepath.Join(dir, f)); err != nil || info.Size() != 1000 {
					t.Errorf("foreign file %s changed: %v", f, err)
				}
			}
		})
	}
}

// TestMinFree: below --min-free no capture is written, and the restart still
// runs; with room again, the next trigger captures.
func TestMinFree(t *testing.T) {
	dir := testutil.Tmpfs(t, 8<<20)
	free, err := FreeBytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	if free < 7<<20 || free > 8<<20 {
		t.Fatalf("fresh 8 MiB tmpfs has %d bytes free", free)
	}
	r := Retention{MinFree: 4 << 20}
	if err := r.CheckFree(dir); err != nil {
		t.Fatalf("empty tmpfs: %v", err)
	}
	// Fill the disk to leave about 2 MiB.
	put(t, dir, "ballast", int(free-(2<<20)))
	if err := r.CheckFree(dir); !errors.Is(err, ErrLowSpace) {
		t.Fatalf("CheckFree with 2 MiB left = %v, want ErrLowSpace", err)
	}

	marker := filepath.Join(t.TempDir(), "restarted")
	check, err := ParseCheck("exec:false", CheckOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{
		Checks: []*Check{check}, Every: 10 * time.Millisecond, Failures: 1,
		Then: "touch " + marker, Retention: r, Capture: quickCapture(dir), History: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	inc := w.Once(context.Background())
	if inc == nil || inc.Bundle != "" || !errors.Is(inc.CaptureErr, ErrLowSpace) {
		t.Fatalf("incident %+v, want no bundle for lack of space", inc)
	}
	if !inc.ThenRan {
		t.Error("restart did not run")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("restart marker: %v", err)
	}
	if got := names(t, dir); !cmp.Equal(got, []string{"ballast"}) {
		t.Errorf("directory holds %v, want only the ballast", got)
	}

	if err := os.Remove(filepath.Join(dir, "ballast")); err != nil {
		t.Fatal(err)
	}
	inc = w.Once(context.Background())
	if inc == nil || inc.Bundle == "" {
		t.Fatalf("with room again: incident %+v, want a bundle", inc)
	}
	if !strings.HasPrefix(inc.Bundle, dir) {
		t.Errorf("bundle %s outside %s", inc.Bundle, dir)
	}
}

// TestRetentionPendingLast: uploaded bundles go first, oldest first; a
// pending one (with its sidecar) only when the uploaded ones are not
// enough, and Apply says which those were.
func TestRetentionPendingLast(t *testing.T) {
	dir := t.TempDir()
	var all []string
	for m := range 5 {
		all = append(all, bundleName(testHost, m, ""))
		put(t, dir, all[m], 100)
	}
	// The two oldest and the middle one are pending.
	for _, i := range []int{0, 1, 2} {
		put(t, dir, all[i]+ship.PendingSuffix, 10)
	}
	removed, pending, err := Retention{Keep: 3}.Apply(dir, testHost, "")
	if err != nil {
		t.Fatal(err)
	}
	// Keep 3 of 5: the only uploaded non-newest bundle (minute 3) goes,
	// then the oldest pending one (minute 0), with its sidecar.
	if diff := cmp.Diff([]string{all[3], all[0]}, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{all[0]}, pending); diff != "" {
		t.Errorf("pending removed (-want +got):\n%s", diff)
	}
	want := []string{all[1], all[1] + ship.PendingSuffix, all[2], all[2] + ship.PendingSuffix, all[4]}
	sort.Strings(want)
	if diff := cmp.Diff(want, names(t, dir)); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
}
