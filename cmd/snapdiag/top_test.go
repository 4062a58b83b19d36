package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
)

// topRow is a listener row of snapdiag top's screen at a width below 110
// columns, where the process column is hidden: the row's local address and
// its counts.
type topRow struct {
	local                   string
	backlog, acceptQ, synRQ int
}

// parseTopRow reads a row of the table, "› ADDR:PORT BACKLOG ACCEPTQ
// SYN-RECV FILL ...", false when line is not one.
func parseTopRow(line string) (topRow, bool) {
	f := strings.Fields(strings.TrimPrefix(line, "›"))
	if len(f) < 4 {
		return topRow{}, false
	}
	r := topRow{local: f[0]}
	_, err := fmt.Sscan(strings.Join(f[1:4], " "), &r.backlog, &r.acceptQ, &r.synRQ)
	return r, err == nil
}

// shortTempDir is a directory with a short path, so a bundle's path fits
// on the footer of a 100-column screen.
func shortTempDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "top")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// footerPath is the bundle path the footer names after 'c'.
func footerPath(screen string) string {
	for _, l := range strings.Split(screen, "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(l), "bundle written: "); ok {
			return p
		}
	}
	return ""
}

// TestTopPtyAcceptQueueFull runs the real binary under a pseudo-terminal
// (tmux) on a lab namespace (--netns) where one listener never accepts and its accept
// queue is full, beside an idle one: the first row, where the cursor
// starts, is the full listener with the queue ss would show. Enter shows
// its half-open sources, and 'c' writes a bundle of that namespace whose
// path the footer gives, with the trigger top sets, while the view stays
// up.
func TestTopPtyAcceptQueueFull(t *testing.T) {
	l := lab.New(t, lab.Options{})
	aq, err := lab.AcceptQueueFull(l, lab.AcceptQueueOpts{Port: 8081, Backlog: 8})
	if err != nil {
		t.Fatal(err)
	}
	// The idle listener has the lower port: an order by port would put it
	// first.
	if _, err := l.Listen(netip.AddrPortFrom(l.ServerIP, 8079), 128, lab.AcceptClose); err != nil {
		t.Fatal(err)
	}
	out := shortTempDir(t)
	// --netns: top reads the namespace from a thread of its own, and c
	// captures it.
	tm := newTmux(t, 100, 30, testutil.Snapdiag(t), "top", "--netns", l.Server,
		"--sample", "0", "--samples", "1", "--out", out)
	full := netip.AddrPortFrom(l.ServerIP, 8081).String()
	scr := tm.waitFor("the full listener on the first row", func(s string) bool {
		r, ok := parseTopRow(selectedLine(s))
		return ok && r.local == full
	})
	r, _ := parseTopRow(selectedLine(scr))
	if r.backlog != 8 || r.acceptQ != aq.Queued {
		t.Errorf("first row %+v, want backlog 8 and accept queue %d\n%s", r, aq.Queued, scr)
	}

	tm.keys("Enter")
	tm.waitFor("the listener's half-open sources", func(s string) bool {
		return strings.Contains(s, "Half-open sources of "+full)
	})
	// One key at a time: an escape followed at once by c reads as alt+c.
	tm.keys("Escape")
	tm.waitFor("the listeners again", func(s string) bool { return !strings.Contains(s, "Half-open sources of") })
	tm.keys("c")
	scr = tm.waitFor("the bundle's path", func(s string) bool { return footerPath(s) != "" })
	path := footerPath(scr)
	if filepath.Dir(path) != out {
		t.Fatalf("bundle %s, want one in %s", path, out)
	}
	b := openBundle(t, path)
	defer b.Close()
	m := b.Manifest()
	if got := m.Trigger.Reason; got != "snapdiag top: capture key" {
		t.Errorf("bundle trigger %q", got)
	}
	if m.NetNS == nil || m.NetNS.Name != l.Server {
		t.Errorf("bundle of namespace %+v, want %s", m.NetNS, l.Server)
	}
	// The view is still up after the capture: the quit key ends it.
	if _, ok := parseTopRow(selectedLine(scr)); !ok {
		t.Errorf("no listener row after the capture:\n%s", scr)
	}
	tm.keys("q")
}

// TestTopPtyNonRoot runs the real binary as nobody (tmux and the command
// under a dropped credential) on a listener of root's whose accept queue
// is full: the listener and its queues show, its process does not, the
// screen says what cannot be seen, and 'c' still writes a bundle, whose
// manifest records the packet sample this user could not take.
func TestTopPtyNonRoot(t *testing.T) {
	testutil.NeedRoot(t, "to drop to another user")
	const nobody = 65534
	lo := netip.MustParseAddr("127.0.0.1")
	_, port := testutil.Listen(t, netip.AddrPortFrom(lo, 0), 0)
	testutil.Dial(t, "tcp4", lo, port) // backlog 0 queues one connection
	// nobody must be able to run the binary and write the bundle.
	dir := shortTempDir(t)
	bin := filepath.Join(dir, "snapdiag")
	data, err := os.ReadFile(testutil.Snapdiag(t))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	for _, err := range []error{
		os.WriteFile(bin, data, 0o755), os.Chmod(dir, 0o755),
		os.Mkdir(out, 0o700), os.Chown(out, nobody, nobody),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	cred := &syscall.Credential{Uid: nobody, Gid: nobody}
	tm := newTmuxAs(t, cred, 100, 30, bin, "top", "--port", fmt.Sprint(port),
		"--samples", "1", "--sample", "500ms", "--out", out)
	local := "127.0.0.1:" + fmt.Sprint(port)
	scr := tm.waitFor("root's listener", func(s string) bool {
		r, ok := parseTopRow(selectedLine(s))
		return ok && r.local == local && r.acceptQ == 1
	})
	if !strings.Contains(scr, "cannot see: the process of another user's listener") {
		t.Errorf("the screen does not say that other users' processes are out of sight:\n%s", scr)
	}
	tm.keys("c")
	scr = tm.waitFor("the bundle's path", func(s string) bool { return footerPath(s) != "" })
	b := openBundle(t, footerPath(scr))
	defer b.Close()
	m := b.Manifest()
	if m.Host.EUID != nobody {
		t.Errorf("bundle taken as uid %d, want %d", m.Host.EUID, nobody)
	}
	if st := m.Collector("packets"); st == nil || st.Status == bundle.StatusOK {
		t.Errorf("packets collector %+v as nobody, want it not ok", st)
	}
	tm.keys("q")
}
