package watch

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapdiag/snapdiag/ship"
)

// TestRetentionSparesBundleOfKilledCapture: a bundle left by a watch killed
// right after its commit was never uploaded; retention must not delete it
// as if it were. With --keep 2 and two pending bundles before the new
// one, the oldest pending bundle goes, never the killed run's newer one.
func TestRetentionSparesBundleOfKilledCapture(t *testing.T) {
	out, store := t.TempDir(), t.TempDir()
	cfg, _ := uploadConfig(t, out, store)
	ctx := context.Background()

	// b0: marked pending; nothing sends it (no upload loop runs).
	b0 := newWatcher(t, cfg).Cycle(ctx)
	if b0 == nil || !ship.IsPending(b0.Bundle) {
		t.Fatalf("b0: %+v, want a pending bundle", b0)
	}
	killed := newWatcher(t, cfg)
	killed.killedAfterCommit = func() bool { return true }
	b1 := killed.Cycle(ctx)
	if b1 == nil || b1.Bundle == "" {
		t.Fatalf("b1: %+v", b1)
	}
	cfg.Retention = Retention{Keep: 2}
	b2 := newWatcher(t, cfg).Cycle(ctx)
	if b2 == nil || b2.Bundle == "" {
		t.Fatalf("b2: %+v", b2)
	}
	if _, err := os.Stat(b1.Bundle); err != nil {
		t.Errorf("retention deleted %s, never uploaded, and kept %s: %v", filepath.Base(b1.Bundle), filepath.Base(b0.Bundle), err)
	}
	if _, err := os.Stat(b0.Bundle); err == nil {
		t.Errorf("retention kept %s, the oldest pending bundle, beyond --keep 2", filepath.Base(b0.Bundle))
	}
}
