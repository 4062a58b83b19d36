package testutil

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(start)
	now := c.After(0)
	soon, later := c.After(time.Second), c.After(time.Minute)
	if got := <-now; !got.Equal(start) {
		t.Errorf("After(0) fired at %v, want %v", got, start)
	}
	if n := c.Waiters(); n != 2 {
		t.Fatalf("%d waiters, want 2", n)
	}
	c.BlockUntil(t, 2)
	c.Advance(time.Second)
	select {
	case got := <-soon:
		if !got.Equal(start.Add(time.Second)) {
			t.Errorf("After(1s) fired at %v", got)
		}
	default:
		t.Fatal("After(1s) did not fire once the clock moved 1s")
	}
	select {
	case <-later:
		t.Fatal("After(1m) fired after 1s")
	default:
	}
	if n := c.Waiters(); n != 1 {
		t.Errorf("%d waiters, want 1", n)
	}
	done := make(chan struct{})
	go func() {
		<-c.After(time.Hour)
		close(done)
	}()
	c.BlockUntil(t, 2)
	c.Advance(time.Hour)
	<-done
	<-later
	if got := c.Now(); !got.Equal(start.Add(time.Second + time.Hour)) {
		t.Errorf("Now = %v", got)
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, 0, "the third look", func() (bool, string) {
		n++
		return n == 3, ""
	})
	if n != 3 {
		t.Errorf("condition checked %d times, want 3", n)
	}
}
