package watch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/snapdiag/snapdiag/ship"
)

// Defaults of the upload retries: the first retry after DefaultUploadRetry,
// each later one twice as late, up to maxUploadRetry.
const (
	DefaultUploadRetry = 30 * time.Second
	maxUploadRetry     = 15 * time.Minute
)

// retryDelay is the wait before the next attempt after n failed rounds:
// base doubled n-1 times, capped at max, of which a random half is waited
// ("equal jitter"), so a fleet whose store came back does not retry in step.
func retryDelay(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}

// markPending marks a bundle just written as pending for the upload target,
// when its commit could not (ship.CommitMark).
func (w *Watcher) markPending(path string) {
	p := w.cfg.Upload
	key, err := p.KeyFor(w.host, path)
	if err == nil {
		err = ship.MarkPending(path, p.Target, key, time.Now())
	}
	if err != nil {
		w.log.Error("mark bundle pending for upload; it is sent from memory", "bundle", path, "error", err.Error())
		w.unmarked.add(path)
	}
	w.countPending()
}

// unmarkedSet is the bundles to upload that have no pending sidecar,
// shared by the capture (which adds) and the upload loop (which sends).
type unmarkedSet struct {
	mu    sync.Mutex
	paths []string
}

func (u *unmarkedSet) add(path string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !slices.Contains(u.paths, path) {
		u.paths = append(u.paths, path)
	}
}

func (u *unmarkedSet) remove(path string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.paths = slices.DeleteFunc(u.paths, func(p string) bool { return p == path })
}

func (u *unmarkedSet) list() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.paths)
}

// holds reports whether path is one of the set's bundles.
func (u *unmarkedSet) holds(path string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Contains(u.paths, path)
}

// marked reports whether the bundle at path has a readable pending
// sidecar, which the pending round sends.
func marked(path string) bool {
	_, err := ship.ReadPending(path)
	return err == nil
}

// uploadUnmarked sends the bundles whose sidecar could not be written and
// returns how many are still unsent. A bundle gone from the disk, sent, or
// marked pending by the failed attempt (ship.Pusher.Push writes the
// sidecar then, so the pending round takes it over) leaves the set.
func (w *Watcher) uploadUnmarked(ctx context.Context) int {
	left := 0
	for _, path := range w.unmarked.list() {
		if _, err := os.Lstat(path); err != nil || marked(path) {
			w.unmarked.remove(path)
			continue
		}
		key, err := w.cfg.Upload.KeyFor(w.host, path)
		if err == nil {
			var res ship.Result
			if res, err = w.cfg.Upload.Push(ctx, path, key); err == nil {
				w.unmarked.remove(path)
				w.logUploaded(path, res)
				continue
			}
		}
		if marked(path) {
			w.unmarked.remove(path)
		}
		if ctx.Err() == nil {
			w.log.Warn("upload failed; bundle kept, pending", "bundle", filepath.Base(path), "error", err.Error())
		}
		left++
	}
	return left
}

// RemoveOrphanSidecars removes the pending sidecars that a capture killed
// inside its commit left without a bundle (ship.RemoveOrphanSidecars),
// under dir's capture lock when it is free at once: its holder is a
// capture, which may be between writing its sidecar and its bundle, and a
// later call looks again. Nothing waits for it; a held lock is no error
// (nothing is removed), any other failure to take the lock is.
func RemoveOrphanSidecars(ctx context.Context, dir string) (removed []string, err error) {
	lock, err := AcquireLock(ctx, dir, 0)
	if errors.Is(err, ErrLocked) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := lock.Release(); rerr != nil && err == nil {
			err = fmt.Errorf("release lock: %w", rerr)
		}
	}()
	return ship.RemoveOrphanSidecars(dir)
}

// removeOrphans is RemoveOrphanSidecars for the output directory, with
// what it did in the log.
func (w *Watcher) removeOrphans(ctx context.Context) {
	removed, err := RemoveOrphanSidecars(ctx, w.cfg.Capture.Dir)
	if len(removed) > 0 {
		w.log.Info("pending sidecars of bundles never committed removed", "bundles", removed)
	}
	if err != nil {
		w.log.Error("remove pending sidecars without a bundle", "error", err.Error())
	}
}

// countPending sets snapdiag_bundles_pending_upload from the sidecars in
// the output directory: every bundle there still waiting for a store,
// including those an earlier run or another target left.
func (w *Watcher) countPending() {
	if w.cfg.Metrics == nil {
		return
	}
	paths, err := ship.ListPending(w.cfg.Capture.Dir)
	if err != nil {
		w.log.Warn("count pending bundles", "error", err.Error())
		return
	}
	w.cfg.Metrics.observePending(len(paths))
}

// kickUpload wakes the upload loop without waiting for it.
func (w *Watcher) kickUpload() {
	select {
	case w.kick <- struct{}{}:
	default: // a wake-up is already queued
	}
}

// uploadLoop sends the pending bundles of the output directory: at start
// (those an earlier run left), when a capture kicks it, and after a failure
// with backoff and jitter until every one is in. It runs beside the checks,
// so neither the checks nor the restart command ever wait for the store.
// It returns when ctx ends; a bundle it was sending stays pending.
func (w *Watcher) uploadLoop(ctx context.Context) {
	failures := 0
	for {
		if w.uploadPending(ctx) == 0 {
			failures = 0
		} else {
			failures++
		}
		var retry <-chan time.Time
		var timer *time.Timer
		if failures > 0 {
			d := retryDelay(w.cfg.UploadRetry, maxUploadRetry, failures)
			w.log.Info("upload retry scheduled", "in", d.Round(time.Millisecond).String(), "round", failures)
			timer = time.NewTimer(d)
			retry = timer.C
		}
		select {
		case <-ctx.Done():
		case <-w.kick:
		case <-retry:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// logUploaded logs a bundle the store now holds.
func (w *Watcher) logUploaded(path string, res ship.Result) {
	w.log.Info("bundle uploaded", "bundle", filepath.Base(path), "target", w.cfg.Upload.Target.String(), "key", res.Key,
		"outcome", string(res.Outcome), "bytes", res.Size, "sha256", res.SHA256)
}

// uploadPending removes the sidecars a killed commit left (removeOrphans),
// then sends every pending bundle once and returns how many are still
// pending.
func (w *Watcher) uploadPending(ctx context.Context) int {
	w.removeOrphans(ctx)
	failed, err := w.cfg.Upload.PushPending(ctx, w.cfg.Capture.Dir, func(path string, res ship.Result, err error) {
		name := filepath.Base(path)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("upload failed; bundle kept, pending", "bundle", name, "error", err.Error())
			}
			return
		}
		w.logUploaded(path, res)
	})
	failed += w.uploadUnmarked(ctx)
	w.countPending()
	if err != nil && ctx.Err() == nil {
		w.log.Error("list pending bundles", "error", err.Error())
		return 1
	}
	return failed
}
