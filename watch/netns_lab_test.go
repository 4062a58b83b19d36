package watch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"golang.org/x/sys/unix"
)

// TestWatchInsideContainer: watch --container runs its checks inside the
// container's namespace (its loopback for tcp://127.0.0.1, its /proc/net for
// an exec check), follows the container when it restarts into a new
// namespace, and captures that namespace when the check fails there.
func TestWatchInsideContainer(t *testing.T) {
	testutil.NeedRoot(t, "entering a network namespace needs CAP_SYS_ADMIN")
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A listener on the server namespace's loopback, none on this one's.
	var port int
	if err := l.Do(l.Server, func() error {
		_, port = testutil.Listen(t, netip.MustParseAddrPort("127.0.0.1:0"), 64)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
		c.Close()
		t.Skipf("something listens on 127.0.0.1:%d in this namespace too", port)
	}
	serverIno := testutil.Inode(t, filepath.Join(netns.RunDir, l.Server))
	clientIno := testutil.Inode(t, filepath.Join(netns.RunDir, l.Client))
	first := startIn(ctx, t, l, l.Server, serverIno)
	ctr := lab.NewFakeContainer(t, lab.FakeContainerOptions{})
	ctr.Add(first.Pid())

	tcp, err := ParseCheck("tcp://127.0.0.1:"+strconv.Itoa(port), CheckOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The server end of the lab's veth pair is in the server namespace
	// only: the check passes there, and fails anywhere else.
	exe, err := ParseCheck("exec:grep -q sdlab-s: /proc/net/dev", CheckOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	dir := t.TempDir()
	w, err := New(Config{
		Checks: []*Check{tcp, exe}, Every: 100 * time.Millisecond, Failures: 1, LockWait: time.Second,
		Capture: quickCapture(dir), Target: netns.Spec{Container: ctr.ID[:12]},
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if n := w.cfg.Capture.NetNS; n == nil || n.Inode != serverIno || n.Owner == nil || n.Owner.ContainerID != ctr.ID {
		t.Fatalf("watching %+v, want the server namespace (inode %d) of container %s", n, serverIno, ctr.ID)
	}
	if inc := w.Cycle(ctx); inc != nil {
		t.Fatalf("inside the container's namespace the checks failed: %v", inc.Failed.Err)
	}

	// The container restarts: its process ends, a new one starts in
	// another namespace (the lab's client one) and joins its cgroup.
	if err := first.Stop(); err != nil {
		t.Logf("stop: %v", err)
	}
	second := startIn(ctx, t, l, l.Client, clientIno)
	ctr.Add(second.Pid())
	inc := w.Cycle(ctx)
	if inc == nil {
		t.Fatalf("in the restarted container's namespace the checks passed; log:\n%s", logs.String())
	}
	if inc.Bundle == "" {
		t.Fatalf("no bundle: %v", inc.CaptureErr)
	}
	if countMsg(logLines(t, logs.String()), "watched namespace moved") != 1 {
		t.Errorf("the log does not say once that the namespace moved:\n%s", logs.String())
	}
	m := manifestOf(t, testutil.ReadBundle(t, inc.Bundle))
	if n := m.NetNS; n == nil || n.Inode != clientIno || n.PID != second.Pid() || n.NamedBy != bundle.NamedByContainer {
		t.Errorf("bundle of namespace %+v, want the client namespace (inode %d) of pid %d", n, clientIno, second.Pid())
	}
	// The client namespace has nothing on 127.0.0.1:port, and no sdlab-s:
	// the tcp check, first in order, is the failure reported.
	if inc.Failed.Check != tcp || m.Trigger.Check == nil || m.Trigger.Check.Target != tcp.Target {
		t.Errorf("failed check %v, trigger %+v: want %v", inc.Failed.Check, m.Trigger.Check, tcp)
	}
}

// startIn starts a process that sleeps in the lab's namespace ns, and
// returns once it is in it: ip netns exec enters the namespace after it
// has started.
func startIn(ctx context.Context, t *testing.T, l *lab.Lab, ns string, ino uint64) *lab.Proc {
	t.Helper()
	p, err := l.Start(ctx, ns, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("/proc", strconv.Itoa(p.Pid()), "ns/net")
	testutil.Eventually(t, 0, "the process to enter "+ns, func() (bool, string) {
		var st unix.Stat_t
		err := unix.Stat(path, &st)
		return err == nil && st.Ino == ino, fmt.Sprint(st.Ino, err)
	})
	return p
}

// TestDialIn: a check's connection is made from inside the namespace (the
// namespace's 127.0.0.1 answers, this one's does not), every time: the
// connect's completion is never lost however fast loopback answers (it
// once was, in about 1 dial of 10, leaving the check to time out).
func TestDialIn(t *testing.T) {
	testutil.NeedRoot(t, "entering a network namespace needs CAP_SYS_ADMIN")
	l := lab.New(t, lab.Options{})
	var ln net.Listener
	if err := l.Do(l.Server, func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Skipf("something listens on %s in this namespace too", addr)
	}
	th, err := netns.Enter(filepath.Join(netns.RunDir, l.Server))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	for i := range 300 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := dialIn(ctx, th, addr)
		cancel()
		if err != nil {
			t.Fatalf("dial %d to %s inside the namespace: %v", i, addr, err)
		}
		c.Close()
	}
}
