package lab

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// errStopped is returned by waits that end because the lab is being torn down.
var errStopped = errors.New("lab stopped")

// WaitFor calls check every interval (25 ms when 0) until it reports done,
// returns an error, timeout passes or stop is closed (a nil stop never is).
// On timeout the error names what was awaited and what check saw last: never
// a bare sleep-and-hope. It returns an error rather than failing a test, so
// it serves the lab's scenarios and goroutines as well as tests.
func WaitFor(stop <-chan struct{}, timeout, interval time.Duration, what string, check func() (done bool, seen string, err error)) error {
	if interval <= 0 {
		interval = pollEvery
	}
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, seen, err := check()
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for %s: still %s after %v", what, seen, timeout)
		}
		select {
		case <-stop:
			return fmt.Errorf("wait for %s: %w", what, errStopped)
		case <-t.C:
		}
	}
}

// waitStable polls value until it has not changed for settle (and satisfies
// ok), within timeout, and returns the value it settled on.
func waitStable(stop <-chan struct{}, timeout, settle, interval time.Duration, what string, value func() (int, error), ok func(int) bool) (int, error) {
	last, since := -1, time.Now()
	err := WaitFor(stop, timeout, interval, what, func() (bool, string, error) {
		v, err := value()
		if err != nil {
			return false, "", err
		}
		now := time.Now()
		if v != last {
			last, since = v, now
		}
		return now.Sub(since) >= settle && ok(v), fmt.Sprintf("%d (last change %v ago)", v, now.Sub(since).Round(time.Millisecond)), nil
	})
	return last, err
}

// KernelVersion returns the running kernel's major and minor version.
func KernelVersion() (major, minor int, err error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0, 0, fmt.Errorf("uname: %w", err)
	}
	return parseKernelVersion(unix.ByteSliceToString(u.Release[:]))
}

func parseKernelVersion(release string) (major, minor int, err error) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("kernel release %q: want MAJOR.MINOR", release)
	}
	if major, err = strconv.Atoi(parts[0]); err != nil {
		return 0, 0, fmt.Errorf("kernel release %q: %w", release, err)
	}
	m := parts[1]
	if i := strings.IndexFunc(m, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		m = m[:i]
	}
	if minor, err = strconv.Atoi(m); err != nil {
		return 0, 0, fmt.Errorf("kernel release %q: %w", release, err)
	}
	return major, minor, nil
}

// SynQueueCap is how many request sockets a listener with this (already
// clamped) backlog holds before its SYN queue counts as full on the running
// kernel: backlog+1 since 6.13 (inet_csk_reqsk_queue_is_full() uses >), and
// backlog on 4.4 to 6.12 (>=). Stable kernels patched in January 2025 behave
// like 6.13 but cannot be told from their version.
func SynQueueCap(backlog int) (int, error) {
	major, minor, err := KernelVersion()
	if err != nil {
		return 0, err
	}
	if major > 6 || major == 6 && minor >= 13 {
		return backlog + 1, nil
	}
	return backlog, nil
}
