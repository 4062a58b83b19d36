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

// uploadConfig is a watch whose check always fails, capturing into out and
// uploading to a file target at store.
func uploadConfig(t *testing.T, out, store string) (Config, *ship.Pusher) {
	pusher := &ship.Pusher{Target: ship.Target{Scheme: ship.SchemeFile, Dir: store}, Store: ship.NewFileStore(store)}
	return Config{Checks: []*Check{failingCheck(t)}, Every: time.Hour, Failures: 1, Capture: quickCapture(out), Upload: pusher}, pusher
}

// TestUploadKilledAfterCommit: a watch killed right after committing a
// bundle leaves it marked pending (the mark is part of the commit), and a
// restart sends it with the next run's bundle.
func TestUploadKilledAfterCommit(t *testing.T) {
	out, store := t.TempDir(), t.TempDir()
	cfg, pusher := uploadConfig(t, out, store)
	ctx := context.Background()

	killed := newWatcher(t, cfg)
	killed.killedAfterCommit = func() bool { return true }
	first := killed.Cycle(ctx)
	if first == nil || first.Bundle == "" || !ship.IsPending(first.Bundle) {
		t.Fatalf("killed capture: %+v, want its bundle marked pending", first)
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
}

// TestUploadMarksOnlyItsOwnBundle: after a watch --upload killed right
// after its commit, a capture made without --upload is never marked
// pending nor sent, and neither is a bundle already uploaded: a mark
// belongs to the one bundle whose commit wrote it.
func TestUploadMarksOnlyItsOwnBundle(t *testing.T) {
	out, store := t.TempDir(), t.TempDir()
	cfg, pusher := uploadConfig(t, out, store)
	ctx := context.Background()

	uploaded := newWatcher(t, cfg).Once(ctx)
	if uploaded == nil || uploaded.Bundle == "" || ship.IsPending(uploaded.Bundle) {
		t.Fatalf("watch --once: %+v, want its bundle uploaded", uploaded)
	}
	killed := newWatcher(t, cfg)
	killed.killedAfterCommit = func() bool { return true }
	if inc := killed.Cycle(ctx); inc == nil || inc.Bundle == "" {
		t.Fatalf("killed capture: %+v", inc)
	}
	plain := cfg
	plain.Upload = nil
	local := newWatcher(t, plain).Cycle(ctx)
	if local == nil || local.Bundle == "" {
		t.Fatalf("capture without --upload: %+v", local)
	}
	if inc := newWatcher(t, cfg).Once(ctx); inc == nil || inc.Bundle == "" {
		t.Fatalf("watch --once: %+v", inc)
	}
	for _, b := range []string{uploaded.Bundle, local.Bundle} {
		if ship.IsPending(b) {
			t.Errorf("%s marked pending", filepath.Base(b))
		}
	}
	key, err := pusher.KeyFor(newWatcher(t, cfg).host, local.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(store, key)); err == nil {
		t.Errorf("%s, captured without --upload, was sent to the store", filepath.Base(local.Bundle))
	}
}

// TestUploadRemovesSidecarWithoutBundle: a sidecar whose bundle never
// appeared (a capture killed inside its commit, between the two) is
// removed by the next upload round; a sidecar that is not one of
// snapdiag's is left alone.
func TestUploadRemovesSidecarWithoutBundle(t *testing.T) {
	out, store := t.TempDir(), t.TempDir()
	cfg, pusher := uploadConfig(t, out, store)
	orphan := filepath.Join(out, "snapdiag-web1-20260101T000000Z.tar.zst")
	if err := ship.MarkPending(orphan, pusher.Target, "web1/"+filepath.Base(orphan), time.Now()); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(out, "notes.txt"+ship.PendingSuffix)
	if err := os.WriteFile(foreign, []byte("mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if failed := newWatcher(t, cfg).uploadPending(context.Background()); failed != 0 {
		t.Errorf("upload round: %d failed", failed)
	}
	if _, err := os.Lstat(ship.PendingPath(orphan)); err == nil {
		t.Error("the sidecar of a bundle never committed is still there")
	}
	if _, err := os.Lstat(foreign); err != nil {
		t.Errorf("a file that is not a snapdiag sidecar was removed: %v", err)
	}
}
