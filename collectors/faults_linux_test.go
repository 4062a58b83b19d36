package collectors

import (
	"context"
	"io"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// failingWriter fails every write, as a full disk does.
type failingWriter struct{ writes int }

func (f *failingWriter) Write([]byte) (int, error) { f.writes++; return 0, syscall.ENOSPC }

// A socket table that cannot be written stops its rows, not its counts: the
// summary still counts every socket, and the error comes out at the end.
func TestSocketTableWriteError(t *testing.T) {
	out := &failingWriter{}
	tb := newSocketTable(out, 1<<30, testZoner())
	m := socketCases()["request sock"]
	const n = 5000 // several flushes' worth of rows
	for i := range n {
		m.Src = netip.AddrPortFrom(m.Src.Addr(), uint16(1000+i))
		if err := tb.add(&m); err != nil {
			t.Fatalf("add %d: %v; a write error must not stop the dump", i, err)
		}
	}
	if err := tb.flush(); err != syscall.ENOSPC {
		t.Errorf("flush = %v, want the write error (ENOSPC)", err)
	}
	if out.writes != 1 {
		t.Errorf("%d writes, want 1: nothing is written after the first failure", out.writes)
	}
	var sum strings.Builder
	if err := tb.writeSummary(&sum); err != nil {
		t.Fatal(err)
	}
	if tb.total != n || !strings.Contains(sum.String(), `"total": 5000`) {
		t.Errorf("total %d, summary %.60q; want all %d sockets counted", tb.total, sum.String(), n)
	}
}

// hangingSampler never returns from sample hangAt, whatever its context says.
type hangingSampler struct {
	hangAt  int
	release chan struct{}
}

func (hangingSampler) Name() string { return "hangs-sampling" }
func (s hangingSampler) Sample(_ context.Context, _ Host, i int, w *bundle.Writer) error {
	if i == s.hangAt {
		<-s.release
	}
	return w.WriteFile(bundle.SampleFile(i, "hang"), []byte("x"))
}

// A collector and a sampler that hang past the deadline: Capture still writes
// a valid bundle in time, marks them timeout, keeps what was complete, leaves
// their unfinished members out, and does not blame the samplers the hung one
// held up.
func TestCaptureHungCollectorAndSampler(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := DefaultHost()
	h.PacketWindow = 0
	opts := Options{
		Dir: t.TempDir(), Samples: 3, Interval: 50 * time.Millisecond, Deadline: time.Second, Host: h,
		Collectors: []Collector{
			&System{},
			fakeCollector{"hangs", func(_ context.Context, w *bundle.Writer) error {
				f, err := w.Create("system/partial")
				if err != nil {
					return err
				}
				f.Write([]byte("half"))
				<-release
				return f.Close()
			}},
		},
		Samplers: []Sampler{Counters{}, hangingSampler{hangAt: 1, release: release}},
	}
	res, err := Capture(context.Background(), opts)
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	b, err := bundle.Open(res.Path, bundle.Limits{})
	if err != nil {
		t.Fatalf("the bundle does not open: %v", err)
	}
	testutil.ValidateBundle(t, res.Path)
	defer b.Close()
	m := b.Manifest()
	if !m.DeadlineHit {
		t.Error("deadline_hit = false")
	}
	for _, tc := range []struct {
		name   string
		status bundle.Status
		error  string
	}{
		{"system", bundle.StatusOK, ""},
		{"hangs", bundle.StatusTimeout, "still running at the deadline"},
		{"hangs-sampling", bundle.StatusTimeout, "still running at the deadline in sample 1"},
		{"counters", bundle.StatusTimeout, "took 1 of 3 samples; sampler hangs-sampling did not return from sample 1"},
	} {
		c := m.Collector(tc.name)
		if c == nil {
			t.Errorf("no manifest entry for %s", tc.name)
			continue
		}
		if c.Status != tc.status || !strings.Contains(c.Error, tc.error) {
			t.Errorf("%s: %s %q, want %s containing %q", tc.name, c.Status, c.Error, tc.status, tc.error)
		}
	}
	for _, name := range []string{
		bundle.PathUname,
		bundle.SampleFile(0, bundle.SampleNetstat), bundle.SampleFile(0, "hang"),
		// Counters ran before the hung sampler in sample 1: complete, kept.
		bundle.SampleFile(1, bundle.SampleNetstat),
	} {
		if _, err := b.Stat(name); err != nil {
			t.Errorf("%s missing: %v", name, err)
		}
	}
	for _, name := range []string{"system/partial", bundle.SampleFile(1, "hang")} {
		if _, err := b.Stat(name); err == nil {
			t.Errorf("%s is in the bundle: it was never completed", name)
		}
	}
	// Every member reads back whole.
	for _, mem := range b.Members() {
		f, err := b.Open(mem.Name)
		if err != nil {
			t.Errorf("open %s: %v", mem.Name, err)
			continue
		}
		if _, err := io.Copy(io.Discard, f); err != nil {
			t.Errorf("read %s: %v", mem.Name, err)
		}
		f.Close()
	}
}
