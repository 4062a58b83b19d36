package watch

import "time"

// Clock is the watcher's source of time for its schedule: the check
// interval, the cool-down, the wait for another process's capture lock and
// the age of a recent bundle. Tests pass a fake that they advance, so none
// waits out a cool-down in real time. Durations of real work (a capture, the
// restart command) are measured with the real clock whatever the Clock is.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// After sends the time on the returned channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// nextTick is the first of start, start+every, start+2*every, ... that is
// after now: like a time.Ticker, a cycle that overran skips the ticks it
// missed instead of running them back to back.
func nextTick(start time.Time, every time.Duration, now time.Time) time.Time {
	if now.Before(start) {
		return start
	}
	n := now.Sub(start)/every + 1
	return start.Add(n * every)
}
