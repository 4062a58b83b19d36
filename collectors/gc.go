package collectors

import (
	"os"
	"runtime/debug"
)

// The garbage collector's settings for a process whose work is one capture
// (CaptureGC).
const (
	// captureGCPercent lets the heap grow to three times what is live
	// before a collection, not twice. A capture is short and most of what
	// it allocates is live until the bundle is written, so collections
	// free little, while each one faults in pages of its own (mark bits,
	// span lists, work buffers, its workers' stacks): at the default of
	// 100, a capture of an empty namespace collected twice and one of
	// 50,000 sockets three times, for 3-14% of their page faults. 400
	// saved no more.
	captureGCPercent = 200
	// captureMemoryLimit bounds the heap that captureGCPercent allows:
	// past it the runtime collects as often as it must to stay below. A
	// capture of 50,000 sockets peaks at about 24 MiB; the bound is far
	// above any capture's live heap (the socket table is streamed, the
	// summary of 200,000 peers is a few tens of MiB), since a live heap near
	// it would be collected back to back, at up to half the CPU (the
	// runtime's limit on collections forced by a memory limit), while
	// --deadline runs.
	captureMemoryLimit = 512 << 20
)

// CaptureGC sets the garbage collector for a process that runs one capture
// and returns the function that restores its settings. GOGC or GOMEMLIMIT
// set in the environment are the user's choice and are left alone.
func CaptureGC() (restore func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	percent := debug.SetGCPercent(captureGCPercent)
	limit := debug.SetMemoryLimit(captureMemoryLimit)
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}
