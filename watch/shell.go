package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"

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
// SIGTERM first and SIGKILL only if the shell outlives the grace, so a
// restart script can undo what it started. Processes the command leaves
// behind after a normal exit (a daemon it started) are not touched.
func runShell(ctx context.Context, cmd string, grace time.Duration, env []string, stdout, stderr io.Writer) error {
	c := exec.Command(shell, "-c", cmd)
	c.Stdout, c.Stderr = stdout, stderr
	if env != nil {
		c.Env = env
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.WaitDelay = waitDelay
	if err := c.Start(); err != nil {
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
			select {
			case <-exited:
				// The shell is gone; its children may not be.
			case <-t.C:
			}
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
