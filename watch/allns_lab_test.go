package watch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"golang.org/x/sys/unix"
)

// TestWatchAllNetNS: watch --all-netns, over healthy namespaces and one
// pod's whose listener never accepts, writes one bundle, of that pod's
// namespace and naming it, within a bounded number of cycles; nothing for
// the healthy ones; nothing more while that namespace cools down; and the
// process's threads stay in their own namespace throughout.
func TestWatchAllNetNS(t *testing.T) {
	testutil.NeedRoot(t, "watch --all-netns enters network namespaces")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	many := lab.NewMany(t, lab.ManyOpts{N: 4, Port: 8080})
	// The pod: a process in the lab's server namespace, in a fake
	// container's cgroup, whose containerd state names the pod. The
	// container is made first so that it is removed last, after the lab
	// has stopped the process.
	fc := lab.NewFakeContainer(t, lab.FakeContainerOptions{PodName: "shop-7d9f8c6b5-x2x4q", PodNamespace: "prod", Name: "shop"})
	l := lab.New(t, lab.Options{})
	sickIno := testutil.Inode(t, filepath.Join(netns.RunDir, l.Server))
	t.Setenv(netns.EnvHostRun, fc.Run)
	sleeper := startIn(ctx, t, l, l.Server, sickIno)
	if err := fc.Adopt(sleeper.Pid()); err != nil {
		t.Fatal(err)
	}
	ours := map[uint64]string{sickIno: "sick", testutil.Inode(t, filepath.Join(netns.RunDir, l.Client)): "client"}
	for _, p := range many.Paths {
		ours[testutil.Inode(t, p)] = "healthy"
	}
	home := testutil.Inode(t, "/proc/thread-self/ns/net")

	dir := t.TempDir()
	clock := testutil.NewClock(time.Now())
	var logs bytes.Buffer
	const failures = 2
	w, err := New(Config{
		AllNetNS: true, Every: time.Second, Failures: failures, Cooldown: 10 * time.Minute,
		// Other tests' namespaces on this host may be sick too: the
		// budget must not hold ours back.
		CapturesPerMinute: 1000, LockWait: 5 * time.Second,
		Capture: quickCapture(dir), Clock: clock, Metrics: NewMetrics(MetricsConfig{PerNetNS: true}),
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cycle := func() {
		t.Helper()
		w.Cycle(ctx)
		clock.Advance(time.Second)
		stayedHome(t, home)
	}
	// ourBundles maps each bundle in dir of one of our namespaces to its
	// manifest.
	ourBundles := func() map[string]*bundle.Manifest {
		t.Helper()
		out := map[string]*bundle.Manifest{}
		for _, name := range bundlesIn(t, dir) {
			path := filepath.Join(dir, name)
			m := manifestOf(t, testutil.ReadBundle(t, path))
			if m.NetNS != nil && ours[m.NetNS.Inode] != "" {
				out[path] = m
			}
		}
		return out
	}

	for range failures + 1 {
		cycle()
	}
	if got := ourBundles(); len(got) != 0 {
		t.Fatalf("bundles while every namespace was healthy: %v", got)
	}
	if _, err := lab.AcceptQueueFull(l, lab.AcceptQueueOpts{Port: 8081, Backlog: 8, Clients: 12}); err != nil {
		t.Fatal(err)
	}
	var got map[string]*bundle.Manifest
	for i := 0; i < failures+1 && len(got) == 0; i++ {
		cycle()
		got = ourBundles()
	}
	if len(got) != 1 {
		t.Fatalf("%d bundles of the lab's namespaces after the accept queue filled, want 1; log:\n%s", len(got), logs.String())
	}
	for path, m := range got {
		n := m.NetNS
		if n.Inode != sickIno || n.Owner == nil || n.Owner.ContainerID != fc.ID || n.Owner.Pod == nil ||
			n.Owner.Pod.Name != fc.PodName || n.Owner.Pod.Namespace != fc.PodNamespace {
			t.Errorf("%s: namespace %+v owner %+v, want inode %d of pod %s/%s", path, n, n.Owner, sickIno, fc.PodNamespace, fc.PodName)
		}
		p := m.Trigger.Listener
		if p == nil || p.Kind != bundle.ProblemAcceptQueueFull || p.Port != 8081 {
			t.Errorf("%s: trigger listener %+v, want the accept queue of port 8081", path, p)
		}
	}

	// The metrics name the pod of the listener whose queue is full.
	page := gather(t, w.cfg.Metrics)
	if got := one(t, page, "snapdiag_listener_accept_queue", map[string]string{"pod": fc.PodName, "namespace": fc.PodNamespace, "port": "8081"}); got != 9 {
		t.Errorf("the pod's accept queue in the metrics: %v, want 9", got)
	}

	// The queue stays full: the namespace's cool-down holds.
	for range failures + 2 {
		cycle()
	}
	if n := len(ourBundles()); n != 1 {
		t.Errorf("%d bundles after more cycles in the cool-down, want still 1", n)
	}
	// So does an agent started anew (its pod rolled out): the bundle in
	// the directory starts that namespace's cool-down.
	again, err := New(Config{
		AllNetNS: true, Every: time.Second, Failures: failures, Cooldown: 10 * time.Minute,
		CapturesPerMinute: 1000, LockWait: 5 * time.Second, Capture: quickCapture(dir), Clock: testutil.NewClock(clock.Now()),
	})
	if err != nil {
		t.Fatal(err)
	}
	for range failures + 1 {
		again.Cycle(ctx)
	}
	again.Close()
	if n := len(ourBundles()); n != 1 {
		t.Errorf("%d bundles after a new agent's cycles in the cool-down, want still 1", n)
	}
	// Past the cool-down, the same trouble is a new incident.
	clock.Advance(10 * time.Minute)
	for range failures {
		cycle()
	}
	if n := len(ourBundles()); n != 2 {
		t.Errorf("%d bundles after the cool-down ended, want 2", n)
	}
	lines := logLines(t, logs.String())
	if countMsg(lines, "triggered by a listener: capturing") < 2 || countMsg(lines, "namespaces discovered") < 1 {
		t.Errorf("log lacks the triggers or the discovery:\n%s", logs.String())
	}
}

// stayedHome fails t unless every thread of the process is in network
// namespace home, or ending: a thread that entered another namespace is
// never handed back to the scheduler, so once its work is done (Close
// returned) it exits, and the runtime reaps it soon after.
func stayedHome(t *testing.T, home uint64) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		ns := filepath.Join("/proc/self/task", e.Name(), "ns/net")
		testutil.Eventually(t, 0, "thread "+e.Name()+" away from home to end", func() (bool, string) {
			var st unix.Stat_t
			if err := unix.Stat(ns, &st); err != nil {
				return true, "" // the thread ended
			}
			return st.Ino == home, fmt.Sprintf("in network namespace %d, not the process's %d", st.Ino, home)
		})
	}
}
