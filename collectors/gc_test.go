package collectors

import (
	"runtime/debug"
	"testing"
)

// TestCaptureGC: the capture's settings hold until restore, which puts back
// what was set before; GOGC in the environment is the user's and stays.
func TestCaptureGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetGCPercent(77)
	defer debug.SetGCPercent(before)
	limitBefore := debug.SetMemoryLimit(-1)

	restore := CaptureGC()
	if got := debug.SetGCPercent(captureGCPercent); got != captureGCPercent {
		t.Errorf("GC percent during the capture = %d, want %d", got, captureGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != captureMemoryLimit {
		t.Errorf("memory limit during the capture = %d, want %d", got, captureMemoryLimit)
	}
	restore()
	if got := debug.SetGCPercent(77); got != 77 {
		t.Errorf("GC percent after the capture = %d, want 77 as before", got)
	}
	if got := debug.SetMemoryLimit(-1); got != limitBefore {
		t.Errorf("memory limit after the capture = %d, want %d as before", got, limitBefore)
	}

	t.Setenv("GOGC", "77")
	restore = CaptureGC()
	got := debug.SetGCPercent(77)
	restore()
	if got != 77 {
		t.Errorf("GC percent during a capture with GOGC=77 set = %d, want 77", got)
	}
}
