package collectors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/sys/unix"
)

// fakeCollector behaves as told: it is how a test gets a collector that
// hangs, panics or finds nothing, which the live kernel will not do on cue.
type fakeCollector struct {
	name string
	run  func(ctx context.Context, w *bundle.Writer) error
}

func (f fakeCollector) Name() string { return f.name }
func (f fakeCollector) Collect(ctx context.Context, _ Host, w *bundle.Writer) error {
	return f.run(ctx, w)
}

// stagingWriter is a disk Writer in a fresh directory, aborted when the
// test ends.
func stagingWriter(t *testing.T) *bundle.Writer {
	t.Helper()
	w, err := bundle.NewWriter(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Abort)
	return w
}

func TestRunnerStatuses(t *testing.T) {
	w := stagingWriter(t)
	release := make(chan struct{})
	defer close(release)
	r := &Runner{
		Collectors: []Collector{
			fakeCollector{"fine", func(_ context.Context, w *bundle.Writer) error {
				return w.WriteFile("system/fine", []byte("x"))
			}},
			fakeCollector{"nothing-here", func(context.Context, *bundle.Writer) error {
				return fmt.Errorf("read /proc/net/nope: %w", fs.ErrNotExist)
			}},
			fakeCollector{"broken", func(context.Context, *bundle.Writer) error {
				return errors.New("read /proc/net/x: permission denied")
			}},
			fakeCollector{"panics", func(context.Context, *bundle.Writer) error {
				panic("collector bug")
			}},
			// Ignores its context entirely: the runner must not wait for it.
			fakeCollector{"hangs", func(_ context.Context, w *bundle.Writer) error {
				f, _ := w.Create("system/partial")
				f.Write([]byte("half"))
				<-release
				return f.Close()
			}},
		},
		Samplers: []Sampler{Counters{}},
		Samples:  3, Interval: 400 * time.Millisecond, Grace: 50 * time.Millisecond,
	}
	h := DefaultHost()
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	sts, _, cut := r.Run(ctx, h, w)
	if !cut {
		t.Error("cut = false, want true: a collector hung past the deadline")
	}
	want := map[string]bundle.Status{
		"fine": bundle.StatusOK, "nothing-here": bundle.StatusAbsent, "broken": bundle.StatusFailed,
		"panics": bundle.StatusFailed, "hangs": bundle.StatusTimeout, "counters": bundle.StatusTimeout,
	}
	for _, st := range sts {
		if st.Status != want[st.Name] {
			t.Errorf("%s: status %s (%s), want %s", st.Name, st.Status, st.Error, want[st.Name])
		}
		switch st.Name {
		case "panics":
			if !strings.Contains(st.Error, "panicked") {
				t.Errorf("panics: error %q does not say it panicked", st.Error)
			}
		case "hangs":
			if len(st.Files) != 0 {
				t.Errorf("hangs: files %v, want none: its member was never completed", st.Files)
			}
		case "counters":
			// Samples at 0 and 400ms fit in 600ms; the one at 800ms does not.
			if !strings.Contains(st.Error, "took 2 of 3 samples") {
				t.Errorf("counters: error %q, want it to say 2 of 3 samples were taken", st.Error)
			}
		case "fine":
			if len(st.Files) != 1 || st.Files[0] != "system/fine" {
				t.Errorf("fine: files %v, want [system/fine]", st.Files)
			}
		}
	}
	if len(sts) != len(want) {
		t.Errorf("got %d statuses, want %d", len(sts), len(want))
	}
}

func TestSummarizeFiles(t *testing.T) {
	var many []string
	for i := range 100 {
		many = append(many, fmt.Sprintf("proc/sys/net/ipv4/k%03d", i))
	}
	many = append(many, "proc/sys/fs/file-nr")
	got := summarizeFiles(many)
	want := []string{"proc/sys/net/ipv4/* (100 files)", "proc/sys/fs/file-nr"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("summarizeFiles = %q, want %q", got, want)
	}
	few := []string{"a/b", "a/c"}
	if got := summarizeFiles(few); len(got) != 2 {
		t.Errorf("short list changed: %q", got)
	}
}

// TestRunnerWaitsIdleThroughGrace: after the deadline the runner waits
// for hung collectors for Grace, on a timer. A done context is always
// ready in a select, so the wait must not keep selecting on it: that
// spins a CPU the late collectors need to wind down (2-core hosts).
func TestRunnerWaitsIdleThroughGrace(t *testing.T) {
	w := stagingWriter(t)
	release := make(chan struct{})
	defer close(release)
	r := &Runner{
		Collectors: []Collector{fakeCollector{"hangs", func(context.Context, *bundle.Writer) error {
			<-release
			return nil
		}}},
		Grace: 400 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := cpuTime(t)
	start := time.Now()
	r.Run(ctx, Host{}, w)
	wall, cpu := time.Since(start), cpuTime(t)-before
	if wall < r.Grace {
		t.Fatalf("Run returned after %v, before the grace of %v", wall, r.Grace)
	}
	if cpu > wall/2 {
		t.Errorf("the runner used %v of CPU in %v of waiting: it spins instead of waiting", cpu, wall)
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
