package testutil

import (
	"sync"
	"testing"
	"time"
)

// Clock is a fake clock with the Now and After of watch.Clock: its time
// moves only when the test calls Advance, so a test can step over a
// cool-down or a check interval without waiting for it.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []clockWaiter
	// changed is closed, and replaced, whenever a waiter is added.
	changed chan struct{}
}

type clockWaiter struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a Clock that reads start until advanced.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the clock's time once Advance has
// moved it d or more past now; at once when d is not positive.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, clockWaiter{at: c.now.Add(d), ch: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Advance moves the clock d forward and fires every After that is due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// Waiters is the number of After calls not yet fired.
func (c *Clock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// Step waits until the code under test waits on the clock, then moves the
// clock d forward: one tick of the loop being tested.
func (c *Clock) Step(t testing.TB, d time.Duration) {
	t.Helper()
	c.BlockUntil(t, 1)
	c.Advance(d)
}

// BlockUntil returns once n Afters are pending: the code under test is then
// waiting on the clock and an Advance releases it. It fails the test if that
// does not happen within WaitLimit of real time.
func (c *Clock) BlockUntil(t testing.TB, n int) {
	t.Helper()
	limit := time.NewTimer(WaitLimit)
	defer limit.Stop()
	for {
		c.mu.Lock()
		got, changed := len(c.waiters), c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-limit.C:
			t.Fatalf("fake clock: %d waiters after %v, want %d", got, WaitLimit, n)
		}
	}
}
