package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapdiag/snapdiag/internal/testutil"
)

// ptyRun is one run of the real binary with stdin and stdout on a
// pseudo-terminal that never answers: whatever the command writes to it is
// recorded and nothing is ever written back, like a serial console or
// `script` whose user types nothing. stderr is a pipe of its own.
type ptyRun struct {
	Code   int
	Stdout []byte // what reached the terminal, with its \r\n line ends
	Stderr string
}

// openPty opens a new pseudo-terminal pair (/dev/ptmx and its /dev/pts
// peer), 80x24.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pty peer: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}); err != nil {
		t.Fatalf("pty size: %v", err)
	}
	return m, s
}

// runOnPty runs snapdiag args with the pty as its controlling terminal,
// stdin and stdout, killed after limit. TERM says xterm, whose users'
// terminals answer queries, so termenv would ask.
func runOnPty(t *testing.T, limit time.Duration, args ...string) ptyRun {
	t.Helper()
	master, slave := openPty(t)
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, testutil.Snapdiag(t), args...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color", "NO_COLOR=", "CI=")
	cmd.Stdin, cmd.Stdout = slave, slave
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start snapdiag on a pty: %v", err)
	}
	slave.Close()
	out := make(chan []byte, 1)
	go func() {
		// Read until the last holder of the peer (the command) is gone:
		// then the master reads EIO.
		b, _ := io.ReadAll(master)
		out <- b
	}()
	err := cmd.Wait()
	code := 0
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("snapdiag %v on a pty did not end within %s; it wrote %q", args, limit, drain(master, out))
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("snapdiag %v: %v", args, err)
	}
	return ptyRun{Code: code, Stdout: drain(master, out), Stderr: errb.String()}
}

// drain is what the reader of master collected; the master is closed first
// if the reader still waits (a child of the command holding the peer).
func drain(master *os.File, out chan []byte) []byte {
	select {
	case b := <-out:
		return b
	case <-time.After(5 * time.Second):
		master.Close()
		return <-out
	}
}
