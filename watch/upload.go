package watch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
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
// before anything is sent: a watch killed mid-upload leaves it marked. It
// reports whether the mark was written.
func (w *Watcher) markPending(path string) bool {
	p := w.cfg.Upload
	key, err := p.KeyFor(w.host, path)
	if err == nil {
		err = ship.MarkPending(path, p.Target, key, time.Now())
	}
	if err != nil {
		w.log.Error("mark bundle pending for upload", "bundle", path, "error", err.Error())
	}
	w.countPending()
	return err == nil
}

// beginIntent makes the coming capture's upload durable before the capture
// starts (ship.Intent): a watch killed between committing the bundle and
// marking it leaves the intent, and the next run marks the bundle. It
// returns the intent's path, "" when none was written (logged; the bundle
// is still marked after the commit).
func (w *Watcher) beginIntent(dir string) string {
	p, err := ship.BeginIntent(dir, w.cfg.Upload.Target, w.host, time.Now())
	if err != nil {
		w.log.Error("write upload intent", "error", err.Error())
		return ""
	}
	return p
}

// endIntent removes an intent whose bundle is marked, or that wrote none.
func (w *Watcher) endIntent(path string) {
	if path == "" {
		return
	}
	if err := ship.EndIntent(path); err != nil {
		w.log.Error("write upload intent", "error", err.Error())
	}
}

// intentSlack is how far before an intent's time a bundle's name may be and
// still be taken as its capture's: the wall clock may step back between the
// two (NTP). A bundle marked that was in fact already sent costs a hash and
// a HEAD, found present.
const intentSlack = time.Minute

// RecoverIntents marks pending the bundles that a process killed between
// committing them and marking them left unmarked. For each intent in dir
// (ship.Intent), every bundle of its host whose name carries the intent's
// time or a later one (less intentSlack), and that has no sidecar, is
// marked for the intent's target; then the intent is removed. An intent that cannot be
// read is removed, and its error returned. The caller holds dir's capture
// lock, so no intent it finds belongs to a capture still running. It
// returns the bundles it marked.
func RecoverIntents(dir string, now time.Time) ([]string, error) {
	paths, err := ship.ListIntents(dir)
	if err != nil {
		return nil, err
	}
	var marked []string
	var errs []error
	for _, p := range paths {
		in, err := ship.ReadIntent(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(p), err), ship.EndIntent(p))
			continue
		}
		t, _ := ship.ParseTarget(in.Target) // ReadIntent checked it
		files, err := ListBundles(dir, in.Host)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		since, done := in.Since.Add(-intentSlack), true
		for _, f := range files {
			path := filepath.Join(dir, f.Name)
			if f.Time.Before(since) || ship.IsPending(path) {
				continue
			}
			key, err := ship.Key(t.Prefix, in.Host, f.Name)
			if err == nil {
				err = ship.MarkPending(path, t, key, now)
			}
			if err != nil {
				errs, done = append(errs, err), false
				continue
			}
			marked = append(marked, path)
		}
		if done {
			errs = append(errs, ship.EndIntent(p))
		}
	}
	return marked, errors.Join(errs...)
}

// recoverIntents runs RecoverIntents under the output directory's lock,
// when it is free at once: its holder is a capture, which marks its own
// bundle, and the next upload round looks again. Nothing waits for it.
func (w *Watcher) recoverIntents(ctx context.Context) {
	dir := w.cfg.Capture.Dir
	lock, err := acquireLock(ctx, dir, 0, w.cfg.Clock)
	if errors.Is(err, ErrLocked) {
		return
	}
	if err != nil {
		w.log.Error("recover upload intents", "error", err.Error())
		return
	}
	defer func() {
		if err := lock.Release(); err != nil {
			w.log.Error("release lock", "error", err.Error())
		}
	}()
	marked, err := RecoverIntents(dir, time.Now())
	if len(marked) > 0 {
		names := make([]string, len(marked))
		for i, p := range marked {
			names[i] = filepath.Base(p)
		}
		w.log.Warn("bundles a killed run left unmarked: marked pending", "bundles", names)
		w.countPending()
	}
	if err != nil {
		w.log.Error("recover upload intents", "error", err.Error())
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

// markNewest marks this host's newest bundle pending when it has no
// sidecar: the bundle an older snapdiag, which wrote no intent, left
// unmarked when it was killed between writing and marking it (intents,
// RecoverIntents, cover every bundle since). An object already in the store with the same
// checksum is not sent again, so a bundle that went in costs one read and
// one look-up per start.
func (w *Watcher) markNewest() {
	files, err := ListBundles(w.cfg.Capture.Dir, w.host)
	if err != nil || len(files) == 0 {
		return
	}
	path := filepath.Join(w.cfg.Capture.Dir, files[0].Name)
	if !ship.IsPending(path) {
		w.markPending(path)
	}
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

// uploadPending marks what intents left (recoverIntents), then sends every
// pending bundle once and returns how many are still pending.
func (w *Watcher) uploadPending(ctx context.Context) int {
	w.recoverIntents(ctx)
	failed, err := w.cfg.Upload.PushPending(ctx, w.cfg.Capture.Dir, func(path string, res ship.Result, err error) {
		name := filepath.Base(path)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("upload failed; bundle kept, pending", "bundle", name, "error", err.Error())
			}
			return
		}
		w.log.Info("bundle uploaded", "bundle", name, "target", w.cfg.Upload.Target.String(), "key", res.Key,
			"outcome", string(res.Outcome), "bytes", res.Size, "sha256", res.SHA256)
	})
	w.countPending()
	if err != nil && ctx.Err() == nil {
		w.log.Error("list pending bundles", "error", err.Error())
		return 1
	}
	return failed
}
