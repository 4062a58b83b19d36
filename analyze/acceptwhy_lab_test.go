package analyze_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/lab"
)

// Why the application does not accept, on the real kernel: lab/cmd/labsvc
// in the server namespace, a full accept queue, a capture by the real
// binary, and the typed diagnosis of the owning process.

// startLabsvc starts lab/cmd/labsvc in the server namespace with args and
// waits until it prints "listening".
func startLabsvc(t *testing.T, l *lab.Lab, args ...string) *lab.Proc {
	t.Helper()
	bin := lab.Build(t, lab.ServicePackage)
	p, err := l.Start(context.Background(), l.Server, bin, append(args, "--lifetime", "2m")...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	waitStdout(t, l, p, "listening ")
	return p
}

// waitStdout waits until p's stdout has want.
func waitStdout(t *testing.T, l *lab.Lab, p *lab.Proc, want string) {
	t.Helper()
	err := lab.WaitFor(l.Done(), 10*time.Second, 0, "labsvc to print "+want, func() (bool, string, error) {
		select {
		case <-p.Done():
			return false, "", fmt.Errorf("labsvc exited: %v: %s", p.Wait(), p.Stderr())
		default:
		}
		return strings.Contains(p.Stdout(), want), fmt.Sprintf("stdout %q", p.Stdout()), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fillQueue connects n clients from the good address to addr and waits
// until the listener's accept queue holds backlog+1 (full:
// sk_acceptq_is_full() is Recv-Q > backlog).
func fillQueue(t *testing.T, l *lab.Lab, addr netip.AddrPort, backlog, n int) {
	t.Helper()
	if _, err := l.Connect(l.GoodIP, addr, n); err != nil {
		t.Fatal(err)
	}
	err := lab.WaitFor(l.Done(), 10*time.Second, 0, fmt.Sprintf("accept queue of %s full", addr), func() (bool, string, error) {
		q, err := l.ListenQueue(addr.Port())
		return q > backlog, strconv.Itoa(q), err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// analyzeCapture captures inside the server namespace and analyzes the
// bundle in this process, for the typed diagnoses.
func analyzeCapture(t *testing.T, l *lab.Lab, port uint16, reason string) *analyze.Report {
	t.Helper()
	bin := lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
	path, err := captureIn(l, bin, t.TempDir(), strconv.Itoa(int(port)), 3, reason)
	if err != nil {
		t.Fatal(err)
	}
	_, r := loadAndAnalyze(t, path)
	return r
}

func comm(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestLabAcceptEMFILE: a server at its RLIMIT_NOFILE whose every accept()
// fails with EMFILE. The fd-exhaustion finding names it with its numbers,
// and the accept-queue finding says it is out of descriptors.
func TestLabAcceptEMFILE(t *testing.T) {
	t.Parallel()
	l := lab.New(t, lab.Options{})
	const backlog, nofile = 4, 64
	addr := netip.AddrPortFrom(l.ServerIP, 8090)
	p := startLabsvc(t, l, "--listen", addr.String(), "--backlog", strconv.Itoa(backlog),
		"--nofile", strconv.Itoa(nofile))
	// The first connection makes accept() fail; the rest fill the queue.
	fillQueue(t, l, addr, backlog, backlog+4)
	waitStdout(t, l, p, "accept: EMFILE")
	pid, name := p.Pid(), comm(t, p.Pid())
	// Every accept() fails, so the process opens and closes nothing more:
	// its descriptors now are those the capture counts. They may be more
	// than the limit: descriptors opened before it was lowered stay.
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	open := len(fds)

	r := analyzeCapture(t, l, addr.Port(), "lab: accept fails with EMFILE")
	f := only(t, r, analyze.IDFDExhaustion)
	d := diagnosis[*analyze.ProcessFDExhaustion](t, f)
	if d.PID != pid || d.Comm != name {
		t.Errorf("fd-exhaustion names %s (pid %d), want %s (pid %d)", d.Comm, d.PID, name, pid)
	}
	if d.OpenFiles != open || open < nofile || d.Limit != nofile || d.Severity != analyze.Critical {
		t.Errorf("fd-exhaustion: %d open files, limit %d, %v; want %d (at least %d), limit %d, critical",
			d.OpenFiles, d.Limit, d.Severity, open, nofile, nofile)
	}
	if !slices.Contains(d.Listeners, addr.String()) || f.Listener != addr.String() {
		t.Errorf("fd-exhaustion listeners %v (finding %q), want %s", d.Listeners, f.Listener, addr)
	}
	i := slices.IndexFunc(f.Recommendations, func(r analyze.Recommendation) bool { return r.Key == "RLIMIT_NOFILE" })
	if i < 0 {
		t.Fatalf("no RLIMIT_NOFILE remedy: %+v", f.Recommendations)
	}
	if rec := f.Recommendations[i]; rec.Current != strconv.Itoa(nofile) || rec.Value != "65536" ||
		!slices.Contains(rec.Commands, fmt.Sprintf("prlimit --pid %d --nofile=65536:65536", pid)) {
		t.Errorf("RLIMIT_NOFILE remedy %+v: want %d -> 65536 with prlimit for pid %d", rec, nofile, pid)
	}

	a := diagnosis[*analyze.AcceptQueueOverflow](t, only(t, r, analyze.IDAcceptQueueOverflow))
	if a.State != analyze.AcceptNoFiles || a.Process == nil || a.Process.PID != pid || a.Listener.Local != addr.String() {
		t.Errorf("accept-queue diagnosis: state %v, process %+v, listener %s; want AcceptNoFiles, pid %d, %s",
			a.State, a.Process, a.Listener.Local, pid, addr)
	}
}

// TestLabAcceptStuck: a server that never calls accept(). The accept-queue
// finding calls it stuck and names its threads; no descriptor is short.
func TestLabAcceptStuck(t *testing.T) {
	t.Parallel()
	l := lab.New(t, lab.Options{})
	const backlog = 4
	addr := netip.AddrPortFrom(l.ServerIP, 8091)
	p := startLabsvc(t, l, "--listen", addr.String(), "--backlog", strconv.Itoa(backlog), "--accept", "never")
	fillQueue(t, l, addr, backlog, backlog+1)

	r := analyzeCapture(t, l, addr.Port(), "lab: an application that never accepts")
	a := diagnosis[*analyze.AcceptQueueOverflow](t, only(t, r, analyze.IDAcceptQueueOverflow))
	if a.State != analyze.AcceptStuck || a.Process == nil || a.Process.PID != p.Pid() {
		t.Fatalf("accept-queue diagnosis: state %v, process %+v; want AcceptStuck, pid %d", a.State, a.Process, p.Pid())
	}
	threads := 0
	for _, w := range a.Waits {
		threads += len(w.TIDs)
	}
	if threads == 0 || threads != len(a.Process.Tasks) || a.Process.Threads < threads {
		t.Errorf("waits %+v cover %d threads, want the %d copied (of %d)", a.Waits, threads, len(a.Process.Tasks), a.Process.Threads)
	}
	if a.Process.OpenFiles <= 0 || a.Process.NoFile <= int64(a.Process.OpenFiles) {
		t.Errorf("open files %d, limit %d: want some, below the limit", a.Process.OpenFiles, a.Process.NoFile)
	}
	for _, f := range r.Findings {
		if f.ID == analyze.IDFDExhaustion {
			t.Errorf("fd-exhaustion for a process with room: %s", f.Title)
		}
	}
}
