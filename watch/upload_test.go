package watch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/ship"
)

// TestUploadKilledAfterCommit: a watch killed between committing a bundle
// and marking it pending, then a newer bundle marked as usual (the next
// run's capture), then a restart: both bundles reach the store. Marking
// only the newest unmarked bundle at start lost the first.
func TestUploadKilledAfterCommit(t *testing.T) {
	out, store := t.TempDir(), t.TempDir()
	pusher := &ship.Pusher{Target: ship.Target{Scheme: ship.SchemeFile, Dir: store}, Store: ship.NewFileStore(store)}
	cfg := Config{Checks: []*Check{failingCheck(t)}, Every: time.Hour, Failures: 1, Capture: quickCapture(out), Upload: pusher}
	ctx := context.Background()

	killed := newWatcher(t, cfg)
	killed.killedAfterCommit = func() bool { return true }
	first := killed.Cycle(ctx)
	if first == nil || first.Bundle == "" || ship.IsPending(first.Bundle) {
		t.Fatalf("killed capture: %+v, want a bundle left unmarked", first)
	}
	second := newWatcher(t, cfg).Cycle(ctx)
	if second == nil || !ship.IsPending(second.Bundle) {
		t.Fatalf("next capture: %+v, want a bundle marked pending", second)
	}

	check, flag := flagCheck(t)
	setHealthy(t, flag, true)
	cfg.Checks = []*Check{check}
	w := newWatcher(t, cfg)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	defer func() {
		cancel()
		<-done
	}()
	for _, b := range []string{first.Bundle, second.Bundle} {
		key, err := pusher.KeyFor(w.host, b)
		if err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 0, filepath.Base(b)+" in the store", func() (bool, string) {
			_, err := os.Stat(filepath.Join(store, key))
			return err == nil && !ship.IsPending(b), "not in the store"
		})
	}
	if left, _ := ship.ListIntents(out); len(left) != 0 {
		t.Errorf("intents left after the restart: %v", left)
	}
}
