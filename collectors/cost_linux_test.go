package collectors

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// TestCaptureRecordsCostAndDumps reads a capture's manifest back from its
// bundle: the capture's CPU time, peak memory and priority are there, and
// the collectors asked the kernel for one dump of the socket table and one
// of the listeners per sample, however many of them read the listeners.
func TestCaptureRecordsCostAndDumps(t *testing.T) {
	const samples = 2
	h := Host{Shared: &Shared{}}
	h.Shared.table.wait = 10 * time.Second // the walks counted below, however loaded the machine
	res, err := Capture(context.Background(), Options{
		Dir: t.TempDir(), Samples: samples, Interval: time.Millisecond, Deadline: 20 * time.Second,
		Host: h, // no packet sample: its window is 0
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := bundle.ParseManifest(testutil.ReadMember(t, res.Path, bundle.PathManifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sockets", "processes", "listeners"} {
		if st := m.Collector(name); st == nil || st.Status != bundle.StatusOK {
			t.Fatalf("collector %s: %+v, want ok", name, st)
		}
	}
	// The sockets collector's dump, and the listeners sampler's at each
	// sample, the first of which the processes collector shares.
	if got, want := h.Shared.DumpRequests(), int64(1+samples); got != want {
		t.Errorf("sock_diag dump requests = %d, want %d", got, want)
	}
	// The first sample's listeners dump only walks the listening hash: its
	// SYN-RECV counts come from the socket table's walk of the established
	// hash.
	if got, want := h.Shared.HashWalks(), int64(samples); got != want {
		t.Errorf("established-hash walks = %d, want %d", got, want)
	}

	c := m.Cost
	if c == nil {
		t.Fatal("manifest has no cost")
	}
	if c.CPUUserMS+c.CPUSystemMS <= 0 {
		t.Errorf("capture CPU time = %v user + %v system ms, want > 0", c.CPUUserMS, c.CPUSystemMS)
	}
	if span := ms(m.End.Sub(m.Start)); c.WallMS <= 0 || c.WallMS > span+1 {
		t.Errorf("capture wall time = %v ms, want > 0 and within start..end (%v ms)", c.WallMS, span)
	}
	// A Go process resides in a few MiB at least; the capture's bounds keep
	// it far below a GiB.
	if c.PeakRSSKiB < 1<<10 || c.PeakRSSKiB > 1<<20 {
		t.Errorf("peak RSS = %d KiB, want between 1 MiB and 1 GiB", c.PeakRSSKiB)
	}
	if c.PeakRSSScope != bundle.PeakSinceCapture && c.PeakRSSScope != bundle.PeakSinceProcess {
		t.Errorf("peak RSS scope = %q", c.PeakRSSScope)
	}
	// Not lowered: the priority recorded is the one the test runs at.
	want := currentPriority()
	if diff := cmp.Diff(&want, c.Priority); diff != "" {
		t.Errorf("priority (-want +got):\n%s", diff)
	}
}

// lowerPriorityHelper is set in the environment of the process that
// TestLowerPriority starts to lower its own priority.
const lowerPriorityHelper = "SNAPDIAG_TEST_LOWER_PRIORITY"

// threadPriorities is what the helper process reports.
type threadPriorities struct {
	Recorded bundle.Priority
	Threads  map[int]bundle.Priority
	// NewThreads counts the threads started after LowerPriority returned.
	NewThreads int
	// Before is the priority before LowerPriority; Restored every thread's
	// after Restore.
	Before   bundle.Priority
	Restored map[int]bundle.Priority
	// Captured is what a capture at the lowered priority recorded.
	Captured     bundle.Priority
	RestoreError string
}

// TestLowerPriority checks, in a process of its own (the priority cannot be
// raised back without CAP_SYS_NICE), that LowerPriority records what it
// applied and applied it to every thread, those the Go runtime starts
// afterwards included.
func TestLowerPriority(t *testing.T) {
	if os.Getenv(lowerPriorityHelper) != "" {
		reportLoweredPriority(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLowerPriority$", "-test.count=1")
	cmd.Env = append(os.Environ(), lowerPriorityHelper+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	var got threadPriorities
	// The JSON comes first; the test framework's PASS follows it.
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&got); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	want := bundle.Priority{Nice: LowNice, IOClass: bundle.IOClassBestEffort, IOLevel: lowIOLevel, Lowered: true}
	if diff := cmp.Diff(want, got.Recorded); diff != "" {
		t.Errorf("recorded priority (-want +got):\n%s", diff)
	}
	want.Lowered = false
	if got.NewThreads == 0 {
		t.Fatalf("no thread was started after the priority was lowered: %v", got.Threads)
	}
	for tid, p := range got.Threads {
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("thread %d priority (-want +got):\n%s", tid, diff)
		}
	}

	// Restore puts every thread back, the new ones included; raising the
	// CPU priority back needs CAP_SYS_NICE.
	testutil.NeedRoot(t, "raising a priority back needs CAP_SYS_NICE")
	if got.RestoreError != "" {
		t.Fatalf("Restore: %s", got.RestoreError)
	}
	back := got.Before
	back.IOLevel = 0 // threadIOPrio's level, not the effective one currentPriority derives
	if back.IOClass != bundle.IOClassNone {
		back.IOLevel = got.Before.IOLevel
	}
	for tid, p := range got.Restored {
		if diff := cmp.Diff(back, p); diff != "" {
			t.Errorf("thread %d priority after Restore (-want +got):\n%s", tid, diff)
		}
	}
	wantCaptured := bundle.Priority{Nice: LowNice, IOClass: bundle.IOClassBestEffort, IOLevel: lowIOLevel, Lowered: true, RestoredForWrite: true}
	if diff := cmp.Diff(wantCaptured, got.Captured); diff != "" {
		t.Errorf("priority a capture recorded (-want +got):\n%s", diff)
	}
}

// reportLoweredPriority lowers the priority, has the runtime start a new
// thread, prints every thread's priority, restores it and prints them again,
// then captures at a lowered priority: all of it as one JSON object.
func reportLoweredPriority(t *testing.T) {
	before := currentPriority()
	lp := LowerPriority()
	out := threadPriorities{Recorded: lp.Applied, Before: before}
	tidsBefore, err := threadIDs()
	if err != nil {
		panic(err)
	}
	// Goroutines locked to their threads for good, one more than there
	// are threads: the runtime has to start at least one new thread.
	for range len(tidsBefore) + 1 {
		locked := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(locked)
			select {}
		}()
		<-locked
	}
	out.Threads = allThreadPriorities()
	for tid := range out.Threads {
		if !slices.Contains(tidsBefore, tid) {
			out.NewThreads++
		}
	}
	if err := lp.Restore(); err != nil {
		out.RestoreError = err.Error()
	}
	out.Restored = allThreadPriorities()
	// A capture lowers nothing itself; given the lowered priority, it
	// records it and restores it for the write.
	res, err := Capture(context.Background(), Options{
		Dir: t.TempDir(), Samples: 1, Interval: time.Millisecond, Deadline: 5 * time.Second,
		Collectors: []Collector{}, Samplers: []Sampler{}, Priority: LowerPriority(),
	})
	if err != nil {
		panic(err)
	}
	// As a reader finds it: read back from the bundle.
	m, err := bundle.ParseManifest(testutil.ReadMember(t, res.Path, bundle.PathManifest))
	if err != nil {
		panic(err)
	}
	out.Captured = *m.Cost.Priority
	json.NewEncoder(os.Stdout).Encode(out)
}

// allThreadPriorities returns the priority of every thread of the process.
func allThreadPriorities() map[int]bundle.Priority {
	tids, err := threadIDs()
	if err != nil {
		panic(err)
	}
	out := map[int]bundle.Priority{}
	for _, tid := range tids {
		var p bundle.Priority
		if p.Nice, err = threadNice(tid); err != nil {
			panic(err)
		}
		if p.IOClass, p.IOLevel, err = threadIOPrio(tid); err != nil {
			panic(err)
		}
		out[tid] = p
	}
	return out
}

// TestPacketSampleSharesListenerDump: the packet sample learns the
// listening ports from the capture's shared listener snapshot, so a capture
// with a sample sends no more dump requests than one without.
func TestPacketSampleSharesListenerDump(t *testing.T) {
	testutil.NeedRoot(t, "a packet socket")
	const samples = 2
	h := Host{Shared: &Shared{}, PacketWindow: 50 * time.Millisecond}
	h.Shared.table.wait = 10 * time.Second // the requests counted below, however loaded the machine
	before := sockdiag.Sent()
	res, err := Capture(context.Background(), Options{
		Dir: t.TempDir(), Samples: samples, Interval: time.Millisecond, Deadline: 20 * time.Second, Host: h,
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := bundle.ParseManifest(testutil.ReadMember(t, res.Path, bundle.PathManifest))
	if err != nil {
		t.Fatal(err)
	}
	if st := m.Collector("packets"); st == nil || st.Status != bundle.StatusOK || m.Packets == nil || m.Packets.Keeps == nil {
		t.Fatalf("packets collector %+v, info %+v: want a sample", st, m.Packets)
	}
	// Counted process-wide: a collector dumping on its own, outside the
	// capture's Dumper, counts too. The sockets collector's dump and the
	// listeners sampler's, one per sample, the first shared.
	if got, want := sockdiag.Sent()-before, int64(1+samples); got != want {
		t.Errorf("sock_diag dump requests = %d, want %d (the packet sample must not dump the listeners again)", got, want)
	}
}
