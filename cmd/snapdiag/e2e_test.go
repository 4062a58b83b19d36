package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/watch"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuilt()
	os.Exit(code)
}

// runLimit bounds one run of the binary: a hung capture fails the test
// instead of hanging it.
const runLimit = time.Minute

// snapdiag runs the real binary as a user would, exit code and all, with env
// added to its environment.
func snapdiag(t *testing.T, env []string, args ...string) testutil.Result {
	t.Helper()
	return testutil.Run(t, runLimit, "", env, append([]string{testutil.Snapdiag(t)}, args...)...)
}

// lastLine is the bundle path capture prints last.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func openBundle(t *testing.T, path string) *bundle.Bundle {
	t.Helper()
	b, err := bundle.Open(path, bundle.DefaultLimits())
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	testutil.ValidateBundle(t, path)
	return b
}

// tarList lists a bundle with the system tar, as a user without snapdiag would.
func tarList(t *testing.T, path string) []string {
	t.Helper()
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Log("zstd not installed: tar --zstd check skipped (CI installs it)")
		return nil
	}
	out, err := exec.Command("tar", "--zstd", "-tf", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tar --zstd -tf %s: %v\n%s", path, err, out)
	}
	return strings.Fields(string(out))
}

func TestCaptureWritesBundle(t *testing.T) {
	dir := t.TempDir()
	r := snapdiag(t, nil, "capture", "--out", dir, "--samples", "2", "--interval", "200ms", "--sample", "0",
		"--reason", "e2e test")
	if r.Code != 0 {
		t.Fatalf("capture exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
	path := lastLine(r.Stdout)
	if filepath.Dir(path) != dir || !strings.HasSuffix(path, ".tar.zst") {
		t.Fatalf("last stdout line %q is not a bundle in %s", path, dir)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != filepath.Base(path) && e.Name() != watch.LockName {
			t.Errorf("output dir holds %s: want only the bundle and the lock (no staging leftovers)", e.Name())
		}
	}
	b := openBundle(t, path)
	m := b.Manifest()
	if m.Trigger.Reason != "e2e test" || m.Options.Samples != 2 {
		t.Errorf("manifest trigger %+v options %+v: reason or samples not recorded", m.Trigger, m.Options)
	}
	for _, name := range []string{
		bundle.SampleFile(0, bundle.SampleNetstat), bundle.SampleFile(1, bundle.SampleNetstat),
		bundle.SampleFile(1, bundle.SampleTimeFile), bundle.SysctlPath("net.core.somaxconn"),
		bundle.SysctlPath("fs.file-nr"), bundle.PathUname,
	} {
		if _, err := b.Stat(name); err != nil {
			t.Errorf("bundle lacks %s: %v", name, err)
		}
	}
	if m.Collector("counters") == nil || m.Collector("counters").Status != bundle.StatusOK {
		t.Errorf("counters collector: %+v", m.Collector("counters"))
	}
	if list := tarList(t, path); list != nil && list[0] != bundle.PathManifest {
		t.Errorf("tar lists %q first, want the manifest first", list[0])
	}
	testutil.ValidateReport(t, []byte(snapdiag(t, nil, "analyze", "--format", "json", path).Stdout))
}

// A deadline shorter than the sampling window still gives a valid bundle that
// says what was cut.
func TestCaptureDeadlineCut(t *testing.T) {
	dir := t.TempDir()
	r := snapdiag(t, nil, "capture", "--out", dir, "--deadline", "1s", "--samples", "3", "--interval", "1s", "--sample", "3s")
	if r.Code != 0 {
		t.Fatalf("capture exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
	path := lastLine(r.Stdout)
	b := openBundle(t, path)
	m := b.Manifest()
	if !m.DeadlineHit {
		t.Error("manifest deadline_hit = false, want true")
	}
	c := m.Collector("counters")
	if c == nil || c.Status != bundle.StatusTimeout || !strings.Contains(c.Error, "took 1 of 3 samples") {
		t.Errorf("counters = %+v, want timeout saying it took 1 of 3 samples", c)
	}
	if _, err := b.Stat(bundle.SampleFile(0, bundle.SampleNetstat)); err != nil {
		t.Errorf("the sample taken before the deadline is missing: %v", err)
	}
	if !strings.Contains(r.Stderr, "deadline") {
		t.Errorf("stderr does not say the deadline cut the capture:\n%s", r.Stderr)
	}
	if list := tarList(t, path); list != nil && len(list) < 10 {
		t.Errorf("tar lists only %d members", len(list))
	}
}

func TestCaptureUsageAndErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"zero samples", []string{"capture", "--samples", "0"}, 2, "--samples"},
		{"bad port", []string{"capture", "--port", "70000"}, 2, "70000"},
		{"unknown flag", []string{"capture", "--bogus"}, 2, "bogus"},
		{"stray argument", []string{"capture", "extra"}, 2, "extra"},
		{"unwritable out", []string{"capture", "--out", "/proc/version/x", "--sample", "0"}, 1, "/proc/version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := snapdiag(t, nil, tc.args...)
			if r.Code != tc.code || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("exit %d stderr %q, want exit %d mentioning %q", r.Code, r.Stderr, tc.code, tc.want)
			}
			if r.Stdout != "" {
				t.Errorf("stdout %q, want nothing on error", r.Stdout)
			}
		})
	}
}

func TestCaptureSystemdTrigger(t *testing.T) {
	dir := t.TempDir()
	r := snapdiag(t, []string{"SERVICE_RESULT=exit-code", "EXIT_CODE=exited", "EXIT_STATUS=1"},
		"capture", "--out", dir, "--samples", "1", "--sample", "0")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	m := openBundle(t, lastLine(r.Stdout)).Manifest()
	if m.Trigger.Systemd["SERVICE_RESULT"] != "exit-code" || m.Trigger.Systemd["EXIT_STATUS"] != "1" ||
		!strings.Contains(m.Trigger.Reason, "exit-code") {
		t.Errorf("trigger %+v does not carry systemd's result", m.Trigger)
	}
}

func TestVersion(t *testing.T) {
	r := snapdiag(t, nil, "version")
	if r.Code != 0 || !strings.Contains(r.Stdout, bundle.Format) {
		t.Errorf("version: exit %d stdout %q", r.Code, r.Stdout)
	}
}

// A capture never writes while another holds the directory's lock (a
// watchdog capturing the same incident); it waits at most half its deadline.
func TestCaptureWaitsForLock(t *testing.T) {
	dir := t.TempDir()
	lock, err := watch.AcquireLock(context.Background(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := snapdiag(t, nil, "capture", "--out", dir, "--deadline", "1s", "--sample", "0", "--samples", "1")
	if r.Code != 1 || !strings.Contains(r.Stderr, "another snapdiag capture") {
		t.Errorf("with the lock held: exit %d stderr %q, want exit 1 naming the other capture", r.Code, r.Stderr)
	}
	lock.Release()
	r = snapdiag(t, nil, "capture", "--out", dir, "--deadline", "2s", "--sample", "0", "--samples", "1")
	if r.Code != 0 {
		t.Errorf("after release: exit %d stderr %q", r.Code, r.Stderr)
	}
}
