package watch

import (
	"bytes"
	"context"
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
	first, err := l.Start(ctx, l.Server, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	ctr := testutil.FakeContainer(t, first.Pid())

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
	serverIno := testutil.Inode(t, filepath.Join(netns.RunDir, l.Server))
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
	second, err := l.Start(ctx, l.Client, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
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
	clientIno := testutil.Inode(t, filepath.Join(netns.RunDir, l.Client))
	if n := m.NetNS; n == nil || n.Inode != clientIno || n.PID != second.Pid() || n.NamedBy != bundle.NamedByContainer {
		t.Errorf("bundle of namespace %+v, want the client namespace (inode %d) of pid %d", n, clientIno, second.Pid())
	}
	// The client namespace has nothing on 127.0.0.1:port, and no sdlab-s:
	// the tcp check, first in order, is the failure reported.
	if inc.Failed.Check != tcp || m.Trigger.Check == nil || m.Trigger.Check.Target != tcp.Target {
		t.Errorf("failed check %v, trigger %+v: want %v", inc.Failed.Check, m.Trigger.Check, tcp)
	}
}
