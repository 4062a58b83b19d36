package collectors

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// TestProcessesCollectsTheOwnerOfAFullQueue fills the accept queue of a
// listener of this test process and checks that the collector names this
// process with its listener, its open files and its threads, and copies the
// kernel's files at their paths.
func TestProcessesCollectsTheOwnerOfAFullQueue(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	_, port := testutil.Listen(t, netip.AddrPortFrom(lo, 0), 1)
	// sk_acceptq_is_full() is Recv-Q > backlog: two connections fill a
	// backlog of 1, and nobody accepts them.
	testutil.Dial(t, "tcp4", lo, port)
	testutil.Dial(t, "tcp4", lo, port)
	local := fmt.Sprintf("127.0.0.1:%d", port)
	me := os.Getpid()

	var got bundle.Process
	var files map[string][]byte
	testutil.Eventually(t, 0, "the processes collector to find this process", func() (bool, string) {
		w := bundle.NewMemWriter(0)
		if err := (&Processes{MaxThreads: 2}).Collect(context.Background(), Host{Proc: "/proc"}, w.For("processes")); err != nil {
			t.Fatalf("Collect: %v", err)
		}
		files = w.Take()
		ps, err := bundle.DecodeProcesses(bytes.NewReader(files[bundle.PathProcesses]))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.PID == me && slices.Contains(p.Listeners, local) {
				got = p
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", ps)
	})
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	// The count is taken at another instant than this one: the runtime
	// opens and closes descriptors of its own, so allow a few.
	if got.OpenFiles < 3 || got.OpenFiles > len(fds)+8 {
		t.Errorf("open files %d, want about %d", got.OpenFiles, len(fds))
	}
	if got.Threads < 1 || len(got.Tasks) == 0 || len(got.Tasks) > 2 {
		t.Errorf("threads %d, tasks %v: want at least one, at most 2 copied", got.Threads, got.Tasks)
	}
	if len(got.Tasks) > 0 && got.Tasks[0] != me {
		t.Errorf("tasks %v: the main thread (%d) must come first", got.Tasks, me)
	}
	for _, name := range []string{bundle.ProcessFile(me, bundle.ProcStatus), bundle.ProcessFile(me, bundle.ProcLimits),
		bundle.TaskFile(me, me, bundle.TaskStat)} {
		if len(files[name]) == 0 {
			t.Errorf("%s not copied", name)
		}
	}
}

// TestProcessesBounds checks the bounds on a directory tree standing in for
// /proc: threads copied, thread ids listed, descriptors counted.
func TestProcessesBounds(t *testing.T) {
	dir := t.TempDir()
	for i := 1; i <= 10; i++ {
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if n, capped, err := countEntries(context.Background(), dir, 4); err != nil || n != 4 || !capped {
		t.Errorf("countEntries(limit 4) = %d, %v, %v; want 4, capped", n, capped, err)
	}
	if n, capped, err := countEntries(context.Background(), dir, 100); err != nil || n != 10 || capped {
		t.Errorf("countEntries(limit 100) = %d, %v, %v; want 10, not capped", n, capped, err)
	}
	tids, total, err := listTasks(dir, 3)
	if err != nil || total != 10 || !slices.Equal(tids, []int{1, 2, 3}) {
		t.Errorf("listTasks(3) = %v, %d, %v; want [1 2 3], 10", tids, total, err)
	}
}

// TestProcessesAbsentProcess: a process that exits between the listener
// dump and its files is left out, and the collector does not fail.
func TestProcessesAbsentProcess(t *testing.T) {
	w := bundle.NewMemWriter(0)
	pr := bundle.Process{PID: 1 << 30, Comm: "gone"}
	ok, err := (&Processes{}).collectProcess(context.Background(), t.TempDir(), &pr, w.For("processes"))
	if ok || err != nil {
		t.Errorf("collectProcess of a missing process = %v, %v; want false, nil", ok, err)
	}
}

func TestNearBacklog(t *testing.T) {
	for _, c := range []struct {
		recvQ, backlog uint32
		want           bool
	}{{0, 0, false}, {1, 0, true}, {9, 10, true}, {8, 10, false}, {11, 10, true}, {0, 10, false}, {4095, 4096, true}} {
		if got := nearBacklog(c.recvQ, c.backlog); got != c.want {
			t.Errorf("nearBacklog(%d, %d) = %v, want %v", c.recvQ, c.backlog, got, c.want)
		}
	}
}

// BenchmarkProcesses measures one collection with this process's listener
// full: the listener dump, the owner scan of /proc and the copies.
func BenchmarkProcesses(b *testing.B) {
	lo := netip.MustParseAddr("127.0.0.1")
	_, port := testutil.Listen(b, netip.AddrPortFrom(lo, 0), 1)
	testutil.Dial(b, "tcp4", lo, port)
	testutil.Dial(b, "tcp4", lo, port)
	for b.Loop() {
		w := bundle.NewMemWriter(0)
		if err := (&Processes{}).Collect(context.Background(), Host{Proc: "/proc"}, w.For("processes")); err != nil {
			b.Fatal(err)
		}
	}
}
