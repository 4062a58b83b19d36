package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/snapdiag/snapdiag/internal/netns"
	"golang.org/x/sys/unix"
)

// shell runs the user's own check and restart commands. They are the
// operator's configuration, written in the watchdog's unit file or command
// line, so a shell is what they expect (pipes, &&, variables).
const shell = "/bin/sh"

// waitDelay is how long a command's output pipes may stay open after it was
// killed or exited (a grandchild that kept them); then they are closed.
const waitDelay = time.Second

// runShell runs cmd with /bin/sh -c in a process group of its own and waits
// for it. When ctx ends first, the whole group is killed (a restart script's
// children too, not just the shell) and the error wraps errTimeout, or
// ctx's error when ctx was cancelled. With a grace above zero the group gets
// SIGTERM first and SIGKILL only if some process of the group (the shell or
// a child it started) outlives the grace, so a restart script and its
// children can undo what they started. Processes the command leaves
// behind after a normal exit (a daemon it started) are not touched.
func runShell(ctx context.Context, cmd string, grace time.Duration, env []string, stdout, stderr io.Writer) error {
	return runShellIn(ctx, nil, cmd, grace, env, stdout, stderr)
}

// runShellIn is runShell with the shell forked inside the network namespace
// th is in (nil: this process's own): a child is a copy of the thread that
// forks it, namespaces included, so the fork runs on th's thread.
func runShellIn(ctx context.Context, th *netns.Thread, cmd string, grace time.Duration, env []string, stdout, stderr io.Writer) error {
	c := exec.Command(shell, "-c", cmd)
	c.Stdout, c.Stderr = stdout, stderr
	if env != nil {
		c.Env = env
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.WaitDelay = waitDelay
	if err := start(th, c); err != nil {
		return fmt.Errorf("start %s -c %q: %w", shell, cmd, err)
	}
	pid := c.Process.Pid
	// Wait for the exit without reaping it (WNOWAIT): while the shell is a
	// zombie its pid, and so the process group id, cannot be reused, so the
	// group kill below can never hit a stranger.
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				return
			}
		}
	}()
	killed := false
	select {
	case <-exited:
	case <-ctx.Done():
		killed = true
		if grace > 0 {
			_ = unix.Kill(-pid, unix.SIGTERM)
			t := time.NewTimer(grace)
			waitGroup(exited, pid, t.C)
			t.Stop()
		}
		_ = unix.Kill(-pid, unix.SIGKILL)
		<-exited
	}
	err := c.Wait()
	if killed {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%q %w: killed its process group", cmd, errTimeout)
		}
		return fmt.Errorf("%q: %w", cmd, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("%q: %w", cmd, err)
	}
	return nil
}

// groupPoll is how often waitGroup looks for the process group's members
// once the shell is gone.
const groupPoll = 50 * time.Millisecond

// start starts c, on th's thread when th is not nil.
func start(th *netns.Thread, c *exec.Cmd) error {
	if th == nil {
		return c.Start()
	}
	var err error
	if derr := th.Do(func() { err = c.Start() }); derr != nil {
		return derr
	}
	return err
}

// waitGroup waits until the shell (pid, the group's leader) exited and no
// other process is left in its group, or until over fires. A
// non-interactive shell dies at once on SIGTERM while the child it waits
// for may still be running its own SIGTERM handler: that child must get
// the rest of the grace, not a SIGKILL the moment its shell is gone.
func waitGroup(exited <-chan struct{}, pid int, over <-chan time.Time) {
	select {
	case <-exited:
	case <-over:
		return
	}
	tick := time.NewTicker(groupPoll)
	defer tick.Stop()
	for groupHasOthers(pid) {
		select {
		case <-tick.C:
		case <-over:
			return
		}
	}
}

// groupHasOthers reports whether a live process other than pgid itself is
// in process group pgid. kill(-pgid, 0) cannot tell: the shell, a zombie
// left unreaped on purpose (runShell), counts as a member. It reads each
// process's pgrp from /proc/PID/stat, whose comm field may hold spaces and
// parentheses, so the fields are counted from its last ')'. When /proc
// cannot be read it says no, and the group is killed as before.
func groupHasOthers(pgid int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	want := strconv.Itoa(pgid)
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err != nil || p == pgid {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		// After comm: state, ppid, pgrp.
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[2] == want && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}
