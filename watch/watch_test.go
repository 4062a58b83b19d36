package watch

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/schema"
)

// flagCheck is an exec check that passes while the returned file exists.
func flagCheck(t *testing.T) (*Check, string) {
	t.Helper()
	flag := filepath.Join(t.TempDir(), "healthy")
	c, err := ParseCheck("exec:test -e "+flag, CheckOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, flag
}

// failingCheck is an exec check that always fails.
func failingCheck(t *testing.T) *Check {
	t.Helper()
	c, err := ParseCheck("exec:false", CheckOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newWatcher is New that fails the test on a configuration error.
func newWatcher(t *testing.T, cfg Config) *Watcher {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func setHealthy(t *testing.T, flag string, ok bool) {
	t.Helper()
	if ok {
		put(t, filepath.Dir(flag), filepath.Base(flag), 0)
	} else if err := os.Remove(flag); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

func testLogger(t *testing.T) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	t.Cleanup(func() {
		testutil.ValidateJSON(t, schema.WatchLog, buf.Bytes())
		if t.Failed() {
			t.Logf("watch log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// TestCooldown: consecutive failures trigger once; failures inside the
// cool-down are logged and write nothing; after it, failures count again.
// A passing check resets the count. The cool-down passes on a fake clock.
func TestCooldown(t *testing.T) {
	dir := t.TempDir()
	check, flag := flagCheck(t)
	log, logBuf := testLogger(t)
	const cooldown = 10 * time.Minute
	clock := testutil.NewClock(time.Now())
	w := newWatcher(t, Config{
		Checks: []*Check{check}, Every: 50 * time.Millisecond, Failures: 2, Cooldown: cooldown,
		History: time.Minute, Capture: quickCapture(dir), Logger: log, Clock: clock,
	})
	ctx := context.Background()
	step := func(healthy, wantIncident bool) *Incident {
		t.Helper()
		setHealthy(t, flag, healthy)
		inc := w.Cycle(ctx)
		if (inc != nil) != wantIncident {
			t.Fatalf("healthy=%v: incident %+v, want one: %v", healthy, inc, wantIncident)
		}
		return inc
	}

	step(true, false)
	step(false, false)
	step(true, false) // resets the count
	step(false, false)
	inc := step(false, true)
	if inc.Bundle == "" || inc.CaptureErr != nil {
		t.Fatalf("first trigger: %+v", inc)
	}
	for range 4 {
		clock.Advance(cooldown / 5)
		step(false, false)
	}
	if got := bundlesIn(t, dir); len(got) != 1 {
		t.Fatalf("after failures in the cool-down: bundles %v, want 1", got)
	}
	lines := logLines(t, logBuf.String())
	if n := countMsg(lines, "check failed in cool-down; not capturing"); n != 4 {
		t.Errorf("%d cool-down failures logged, want 4", n)
	}
	clock.Advance(cooldown / 5) // the cool-down's end
	step(false, false)          // counts again from one
	inc = step(false, true)
	if inc.Bundle == "" {
		t.Fatalf("second trigger after the cool-down: %+v", inc)
	}
	if got := bundlesIn(t, dir); len(got) != 2 {
		t.Errorf("bundles %v, want 2", got)
	}
}

// TestTriggerOrder: the restart command runs only after the bundle is in
// place, and the bundle carries the failed check and the history.
func TestTriggerOrder(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "restarted")
	check, flag := flagCheck(t)
	log, _ := testLogger(t)
	w := newWatcher(t, Config{
		Checks: []*Check{check}, Every: 50 * time.Millisecond, Failures: 2, Cooldown: time.Hour,
		// The marker holds the restart's start time in nanoseconds and the
		// bundle path it was given.
		Then:    `date +%s%N > ` + marker + `; echo "$SNAPDIAG_BUNDLE" >> ` + marker,
		Reason:  "imap down",
		History: time.Minute, Capture: quickCapture(dir), Logger: log,
	})
	ctx := context.Background()
	setHealthy(t, flag, true)
	for range 3 {
		w.Cycle(ctx)
	}
	setHealthy(t, flag, false)
	w.Cycle(ctx)
	inc := w.Cycle(ctx)
	if inc == nil || inc.Bundle == "" || !inc.ThenRan || inc.ThenErr != nil {
		t.Fatalf("incident %+v", inc)
	}

	data, err := os.ReadFile(marker)
	if err != nil {
		t.Fatalf("restart marker: %v", err)
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		t.Fatalf("marker %q", data)
	}
	ns, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	restarted := time.Unix(0, ns)
	if fields[1] != inc.Bundle {
		t.Errorf("restart was given bundle %q, want %q", fields[1], inc.Bundle)
	}
	info, err := os.Stat(inc.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	members := testutil.ReadBundle(t, inc.Bundle)
	m := manifestOf(t, members)
	if !restarted.After(info.ModTime()) || !restarted.After(m.End) {
		t.Errorf("restart at %v, bundle written %v (manifest end %v): the restart must come after", restarted, info.ModTime(), m.End)
	}

	if m.Trigger.Reason != "imap down" {
		t.Errorf("reason %q", m.Trigger.Reason)
	}
	c := m.Trigger.Check
	if c == nil || c.Kind != "exec" || c.Target != check.Target || c.Result != ResultFailed ||
		!strings.Contains(c.Error, "exit status 1") || c.LatencyMS <= 0 {
		t.Errorf("trigger check %+v", c)
	}
	// Five cycles, five history samples, then the capture's own.
	if m.Options.History != 5 {
		t.Errorf("history samples %d, want 5", m.Options.History)
	}
	total := m.Options.History + m.Options.Samples
	var prev time.Time
	for i := range total {
		if _, ok := members[bundle.SampleFile(i, bundle.SampleNetstat)]; !ok {
			t.Errorf("sample %d has no netstat", i)
		}
		ts := sampleTime(t, members, i)
		if !ts.After(prev) {
			t.Errorf("sample %d at %v, not after the one before (%v)", i, ts, prev)
		}
		prev = ts
	}
	if _, ok := members[bundle.SampleFile(total, bundle.SampleTimeFile)]; ok {
		t.Errorf("more than %d samples", total)
	}
}

// TestOnceHealthy: a passing --once cycle returns no incident and writes nothing.
func TestOnceHealthy(t *testing.T) {
	dir := t.TempDir()
	check, flag := flagCheck(t)
	setHealthy(t, flag, true)
	w := newWatcher(t, Config{Checks: []*Check{check}, Every: 10 * time.Millisecond, Failures: 3, Capture: quickCapture(dir),
		Then: "touch " + filepath.Join(dir, "restarted")})
	if inc := w.Once(context.Background()); inc != nil {
		t.Fatalf("incident %+v", inc)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("directory holds %v", got)
	}
}

// TestOnceCooldown: a --once run within the cool-down of an earlier bundle
// restarts but does not capture again.
func TestOnceCooldown(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "restarts")
	check := failingCheck(t)
	cfg := Config{Checks: []*Check{check}, Every: 10 * time.Millisecond, Failures: 1, Cooldown: time.Hour,
		Capture: quickCapture(dir), Then: "echo x >> " + marker}
	for i := range 2 {
		w := newWatcher(t, cfg) // a fresh process each time, as under cron
		inc := w.Once(context.Background())
		if inc == nil || !inc.ThenRan {
			t.Fatalf("run %d: incident %+v", i, inc)
		}
		if i == 1 && (inc.Bundle != "" || inc.CaptureErr == nil) {
			t.Errorf("second run: %+v, want no bundle within the cool-down", inc)
		}
	}
	if got := bundlesIn(t, dir); len(got) != 1 {
		t.Errorf("bundles %v, want 1", got)
	}
	if data, _ := os.ReadFile(marker); strings.Count(string(data), "x") != 2 {
		t.Errorf("restarts %q, want 2", data)
	}
}

// TestCooldownSurvivesRestart: a watcher started within the cool-down of a
// bundle already in --out (its own previous run, restarted) does not capture
// again until the cool-down has passed.
func TestCooldownSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	check := failingCheck(t)
	log, logBuf := testLogger(t)
	clock := testutil.NewClock(time.Now())
	cfg := Config{Checks: []*Check{check}, Every: 50 * time.Millisecond, Failures: 1, Cooldown: time.Hour,
		Capture: quickCapture(dir), Logger: log, Clock: clock}
	first := newWatcher(t, cfg)
	if inc := first.Cycle(context.Background()); inc == nil || inc.Bundle == "" {
		t.Fatalf("first watcher: %+v", inc)
	}
	second := newWatcher(t, cfg)
	// Four cycles: Run's first, then one at each tick of the fake clock.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- second.Run(ctx) }()
	for range 3 {
		clock.Step(t, cfg.Every)
	}
	clock.BlockUntil(t, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := bundlesIn(t, dir); len(got) != 1 {
		t.Errorf("bundles %v, want the first watcher's only", got)
	}
	lines := logLines(t, logBuf.String())
	if countMsg(lines, "cool-down from a recent bundle") != 1 || countMsg(lines, "check failed in cool-down; not capturing") != 4 {
		t.Errorf("second watcher did not hold off in the cool-down for its four cycles")
	}
}

// TestNewKeepsCallerHost: a capture template whose Host has no proc root
// keeps the caller's ports and bounds; only its zero fields take defaults.
func TestNewKeepsCallerHost(t *testing.T) {
	check, _ := flagCheck(t)
	opts := quickCapture(t.TempDir())
	opts.Host = collectors.Host{Ports: []int{143}, SocketCap: 5}
	w := newWatcher(t, Config{Checks: []*Check{check}, Every: time.Second, Failures: 1, Capture: opts})
	want := collectors.DefaultHost()
	want.Ports, want.SocketCap, want.PacketWindow = []int{143}, 5, 0
	if diff := cmp.Diff(want, w.cfg.Capture.Host); diff != "" {
		t.Errorf("capture host (-want +got):\n%s", diff)
	}
}

// TestOnceAttemptsEvery: --once makes up to Failures attempts, each after
// waiting Every on the clock, and triggers when none passes.
func TestOnceAttemptsEvery(t *testing.T) {
	dir := t.TempDir()
	check := failingCheck(t)
	log, logBuf := testLogger(t)
	clock := testutil.NewClock(time.Now())
	w := newWatcher(t, Config{Checks: []*Check{check}, Every: time.Minute, Failures: 3, Capture: quickCapture(dir),
		Logger: log, Clock: clock})
	done := make(chan *Incident, 1)
	go func() { done <- w.Once(context.Background()) }()
	for range 2 {
		clock.Step(t, time.Minute)
	}
	inc := <-done
	if inc == nil || inc.Bundle == "" {
		t.Fatalf("incident %+v, want a bundle", inc)
	}
	if n := countMsg(logLines(t, logBuf.String()), "check failed"); n != 3 {
		t.Errorf("%d failed attempts logged, want 3", n)
	}
}

func TestNextTick(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now  time.Duration // after start
		want time.Duration
	}{
		{-time.Second, 0},
		{0, 5 * time.Second},
		{time.Second, 5 * time.Second},
		{5 * time.Second, 10 * time.Second},
		{12 * time.Second, 15 * time.Second}, // an overrun skips the missed tick
	} {
		if got := nextTick(start, 5*time.Second, start.Add(tc.now)); !got.Equal(start.Add(tc.want)) {
			t.Errorf("nextTick at +%v = +%v, want +%v", tc.now, got.Sub(start), tc.want)
		}
	}
}
