package watch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// cancelOn is a command's stdout that cancels a context once the command
// printed a line.
type cancelOn struct {
	mu     sync.Mutex
	buf    strings.Builder
	line   string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.line+"\n") {
		c.cancel()
	}
	return len(p), nil
}

// TestRunShellGraceForChildren: a stop gives the restart's children, not
// only its shell, the grace to clean up. The shell dies at once on SIGTERM;
// the subshell it waits for traps SIGTERM and writes a file: that file must
// be written before the group's SIGKILL, and quickly, not at the grace's
// end.
func TestRunShellGraceForChildren(t *testing.T) {
	done := filepath.Join(t.TempDir(), "cleaned")
	cmd := `(trap 'echo cleaned > ` + done + `; exit 0' TERM; echo ready; while :; do sleep 0.05; done)`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOn{line: "ready", cancel: cancel}
	const grace = time.Minute
	start := time.Now()
	err := runShell(ctx, cmd, grace, nil, out, os.Stderr)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("runShell: %v, want an error wrapping context.Canceled", err)
	}
	if _, err := os.Stat(done); err != nil {
		t.Errorf("the child trapping SIGTERM was killed before its clean-up: %v", err)
	}
	// Not a timing assertion: the group ended on its own, so runShell did
	// not wait the whole grace out.
	if took := time.Since(start); took >= grace {
		t.Errorf("runShell took %v: it waited the grace out after the group had ended", took)
	}
}
