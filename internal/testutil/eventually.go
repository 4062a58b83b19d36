package testutil

import (
	"os"
	"testing"
	"time"
)

// WaitLimit bounds the waits of this package that are given no limit: a
// condition that has not come true by then fails the test instead of hanging
// it. It guards against a hang; it is not a speed requirement.
const WaitLimit = 30 * time.Second

// pollEvery is how often Eventually looks again at a condition that no event
// announces (a queue filling in softirq context, a process being reaped).
const pollEvery = 20 * time.Millisecond

// Eventually calls check until it reports done: at once, then every 20 ms.
// When limit passes first (WaitLimit when limit is 0) it fails the test,
// naming what it waited for and what check saw last.
func Eventually(t testing.TB, limit time.Duration, what string, check func() (done bool, seen string)) {
	t.Helper()
	if limit <= 0 {
		limit = WaitLimit
	}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		done, seen := check()
		if done {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("waited %v for %s; last saw:\n%s", limit, what, seen)
		case <-tick.C:
		}
	}
}

// NeedRoot skips the test, saying why, unless it runs as root (CI does).
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("%s needs root (CI runs as root)", why)
	}
}
