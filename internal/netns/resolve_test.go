package netns_test

import (
	"path/filepath"
	"testing"

	"github.com/snapdiag/snapdiag/internal/netns"
	"golang.org/x/sys/unix"
)

// TestResolveRefusesWhatIsNoNamespace: --netns given a path that is no
// namespace file is an error, at once: a regular file, and a FIFO, whose
// open(2) for reading would otherwise wait for a writer for ever, before
// the capture's deadline even starts.
func TestResolveRefusesWhatIsNoNamespace(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, "/proc/self/status", "/proc/self/ns/uts"} {
		if n, err := netns.Resolve("/proc", netns.Spec{NetNS: path}); err == nil {
			t.Errorf("Resolve(--netns %s) = %+v, want an error", path, n)
		}
	}
}
