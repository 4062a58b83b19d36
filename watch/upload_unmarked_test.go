package watch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/ship"
)

// TestUnmarkableBundleStillSent: when the pending sidecar cannot be
// written (here a directory in its place stands in for ENOSPC/EDQUOT/EIO on
// the sidecar, the bundle itself committed), a watch --upload whose store is
// up still sends the bundle.
func TestUnmarkableBundleStillSent(t *testing.T) {
	out, store := t.TempDir(), t.TempDir()
	cfg, pusher := uploadConfig(t, out, store)
	host, _ := os.Hostname()
	now := time.Now()
	for s := -1; s < 30; s++ {
		name := bundle.FileName(host, now.Add(time.Duration(s)*time.Second))
		if err := os.MkdirAll(filepath.Join(ship.PendingPath(filepath.Join(out, name)), "x"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	inc := newWatcher(t, cfg).Once(context.Background())
	if inc == nil || inc.Bundle == "" {
		t.Fatalf("watch --once: %+v", inc)
	}
	if _, err := os.Stat(inc.Bundle); err != nil {
		t.Fatalf("bundle not committed: %v", err)
	}
	key, _ := pusher.KeyFor(host, inc.Bundle)
	if _, err := os.Stat(filepath.Join(store, key)); err != nil {
		t.Errorf("%s is on disk and the store is up, but it was never sent: %v", filepath.Base(inc.Bundle), err)
	}
}
