// Package watch is snapdiag's own watchdog: it runs health checks at a fixed
// interval, keeps the recent counter and listener samples in memory, and when
// a check has failed enough times in a row it captures a bundle (with that
// history as its first samples and the failed check in its trigger), then runs
// the restart command, then holds off for a cool-down.
//
// Safety is part of the contract: one capture at a time per output directory
// (AcquireLock), no capture when the disk is nearly full, retention that
// deletes only this host's bundles (Retention), and a stop signal that lets
// an in-flight capture finish within its deadline.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/ship"
)

// Defaults of the watch command.
const (
	DefaultEvery        = 5 * time.Second
	DefaultTimeout      = 3 * time.Second
	DefaultFailures     = 3
	DefaultCooldown     = 10 * time.Minute
	DefaultHistory      = 10 * time.Minute
	DefaultHistoryBytes = 32 << 20
	DefaultLockWait     = 15 * time.Second
	DefaultThenTimeout  = 5 * time.Minute
	DefaultKeep         = 20
	DefaultMaxBytes     = 1 << 30
	DefaultMinFree      = 256 << 20
)

// maxHistorySamples bounds the history's sample count whatever --history and
// --every say (a day at 1 s is 86,400); the byte bound usually bites first.
const maxHistorySamples = 100_000

// sampleTimeout bounds one history sample: a sample that takes longer than
// this is skipped, not waited for, so a slow /proc never delays the checks.
const sampleTimeout = 2 * time.Second

// Config is what a Watcher does.
type Config struct {
	Checks []*Check
	// Every is the check interval, and the history's resolution.
	Every time.Duration
	// Failures is how many consecutive failed cycles trigger a capture.
	Failures int
	// Cooldown follows a trigger: failures are logged, nothing is captured
	// and the restart command is not run again.
	Cooldown time.Duration
	// Then is the restart command, run with /bin/sh -c after the capture.
	Then        string
	ThenTimeout time.Duration
	// Reason is recorded in the trigger; empty gives one that names the check.
	Reason string
	// History is how far back the in-memory samples reach; HistoryBytes
	// bounds their memory. History 0 keeps none.
	History      time.Duration
	HistoryBytes int
	// LockWait bounds the wait for another process's capture into Dir; when
	// it passes, the capture is skipped.
	LockWait  time.Duration
	Retention Retention
	// Capture is the template of every capture: Dir, Samples, Interval,
	// Deadline, Host, Tool, MaxBytes. The watcher fills in Trigger, History
	// and Samplers.
	Capture collectors.Options
	// Logger receives the structured log; nil discards it.
	Logger *slog.Logger
	// Bundles, when set, gets the path of every bundle written, one a line.
	Bundles io.Writer
	// ThenOutput receives the restart command's stdout and stderr (nil: discarded).
	ThenOutput io.Writer
	// Clock schedules the checks and times the cool-down; nil is the
	// system clock.
	Clock Clock
	// Upload, when set, sends every bundle to its store after it is
	// written, beside the checks: the restart command never waits for it.
	// A bundle not yet sent stays in Dir, marked pending, and is retried
	// with backoff from UploadRetry (0: DefaultUploadRetry) on.
	Upload      *ship.Pusher
	UploadRetry time.Duration
	// Metrics, when set, is given every sample, check result and capture
	// (watch --metrics). A sample is then taken every cycle even with no
	// history.
	Metrics *Metrics
	// Webhook, when set, configures the Alertmanager webhook (Watcher.Webhook).
	Webhook *WebhookConfig
	// Target is the network namespace to watch (watch --netns, --pid,
	// --container), read under Capture.Host.Proc; zero watches the
	// watcher's own. The checks run inside it (tcp://127.0.0.1:8080 is its
	// loopback; an exec check's command is started in it), the samples and
	// captures read it, and it is followed: when the namespace named is
	// no longer the one held (a container restarted), the new one is
	// entered, the log says so, and the history starts afresh.
	Target netns.Spec
	// AllNetNS watches every other network namespace of the host (watch
	// --all-netns) instead of checks: each namespace's listeners are
	// looked at every cycle (accept queue over its backlog, drops, the
	// listen-path counters rising), and a namespace whose problem lasts
	// Failures cycles is captured, with the listener in the trigger and
	// its owner (container, pod) in the manifest. Cooldown is then per
	// namespace. It takes no Checks, Then, Target, Metrics or Webhook.
	AllNetNS bool
	// MaxNetNS bounds the namespaces watched (0: collectors.DefaultMaxNetNS).
	MaxNetNS int
	// CapturesPerMinute bounds the captures of all namespaces together
	// (0: DefaultCapturesPerMinute).
	CapturesPerMinute int
	// Discover is how often the namespaces are looked for anew (0:
	// DefaultDiscover).
	Discover time.Duration
}

// ErrRestartInterrupted is wrapped by the error of a restart command that a
// stop signal cut short, and returned by Run when that happened: the
// service may be left stopped.
var ErrRestartInterrupted = errors.New("restart command interrupted by a stop signal")

// thenGrace is how long a restart command's process group has, after the
// SIGTERM of a stop signal or of --then-timeout, before SIGKILL.
const thenGrace = 5 * time.Second

// ErrRecentBundle is the capture error of a --once trigger that found a bundle
// of this host younger than the cool-down: the incident's evidence is already
// on disk.
var ErrRecentBundle = errors.New("a recent bundle exists")

// Incident is what one trigger did.
type Incident struct {
	// Failed is the check result that triggered it; zero when an alert did.
	Failed Result
	// Alert is the Alertmanager alert that triggered it, or nil.
	Alert *Alert
	// Bundle is the bundle written, "" when none was.
	Bundle string
	// CaptureErr says why no bundle was written (ErrLocked, ErrLowSpace, a
	// capture error) or is nil.
	CaptureErr error
	// ThenRan reports whether the restart command ran; ThenErr is its error.
	ThenRan bool
	ThenErr error
	// NetNS and Listener, with Config.AllNetNS, are the namespace captured
	// and the listener's problem that triggered it.
	NetNS    *bundle.NetNS
	Listener *bundle.ListenerProblem
}

// Watcher runs the checks and triggers captures. Its methods must not be
// called concurrently.
type Watcher struct {
	cfg      Config
	log      *slog.Logger
	samplers []collectors.Sampler
	hist     *History
	host     string
	// follow holds the watched namespace; nil watches the process's own.
	follow *follower
	// node is the state of Config.AllNetNS, nil without it.
	node *nodeWatch

	// kick wakes the upload loop when a bundle was written.
	kick chan struct{}
	// unmarked holds the bundles to upload whose pending sidecar could not
	// be written (a full or failing disk): the upload loop sends them from
	// memory, and retention keeps them as it keeps pending ones.
	unmarked unmarkedSet
	// killedAfterCommit, set by tests, makes a capture stop right after
	// its bundle is committed when it returns true, as a process killed
	// there would.
	killedAfterCommit func() bool

	consecutive   int
	cooldownUntil time.Time
	healthy       bool // the last cycle passed (for logging transitions)
	// alerts carries matching alerts from the webhook to Run; one waits,
	// the webhook refuses more while it does.
	alerts chan alertRequest
}

// New checks cfg and returns a Watcher.
func New(cfg Config) (*Watcher, error) {
	var node *nodeWatch
	if cfg.AllNetNS {
		nw, err := newNodeWatch(&cfg)
		if err != nil {
			return nil, err
		}
		node = nw
	}
	switch {
	case len(cfg.Checks) == 0 && cfg.Metrics == nil && cfg.Webhook == nil && !cfg.AllNetNS:
		return nil, errors.New("no checks: give at least one --check, or --metrics or --webhook")
	case cfg.Every <= 0:
		return nil, errors.New("check interval must be positive")
	case cfg.Failures < 1:
		return nil, errors.New("failures must be at least 1")
	case cfg.Cooldown < 0 || cfg.History < 0 || cfg.LockWait < 0:
		return nil, errors.New("cool-down, history and lock wait must not be negative")
	case cfg.Capture.Dir == "":
		return nil, errors.New("no output directory")
	}
	if cfg.ThenTimeout <= 0 {
		cfg.ThenTimeout = DefaultThenTimeout
	}
	if cfg.HistoryBytes <= 0 {
		cfg.HistoryBytes = DefaultHistoryBytes
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.UploadRetry <= 0 {
		cfg.UploadRetry = DefaultUploadRetry
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := cfg.Capture.Host.WithDefaults()
	var follow *follower
	if !cfg.Target.IsZero() {
		f, err := openFollower(h.Proc, cfg.Target, log)
		if err != nil {
			return nil, &TargetError{Err: err}
		}
		follow = f
		h.NS, cfg.Capture.NetNS = f.ref.thread(), f.netNS()
		for _, c := range cfg.Checks {
			c.ns = f.ref
		}
	}
	cfg.Capture.Host = h
	// The samplers live as long as the watcher: the history and every
	// capture use the same values, so their caches (listener owners) carry
	// over from one sample to the next.
	_, samplers := collectors.DefaultSet(h)
	if cfg.Capture.Samplers != nil {
		samplers = cfg.Capture.Samplers
	}
	n := 0
	if cfg.History > 0 {
		n = int(min((cfg.History+cfg.Every-1)/cfg.Every, maxHistorySamples))
	}
	facts := collectors.HostFacts(h)
	host := facts.Hostname
	cfg.Metrics.setKernel(facts.KernelRelease)
	return &Watcher{
		cfg: cfg, log: log, samplers: samplers, host: host, follow: follow, node: node,
		hist: NewHistory(n, cfg.HistoryBytes), healthy: true,
		kick:   make(chan struct{}, 1),
		alerts: make(chan alertRequest, 1),
	}, nil
}

// TargetError is New's error when the namespace to watch could not be
// found or entered: not a mistake in the configuration, but the host's state
// or the watcher's privileges.
type TargetError struct{ Err error }

func (e *TargetError) Error() string { return "namespace to watch: " + e.Err.Error() }

func (e *TargetError) Unwrap() error { return e.Err }

// Close leaves the watched namespace. The Watcher is not usable after it.
func (w *Watcher) Close() {
	w.follow.close()
	if w.node != nil {
		w.node.ns.Close()
	}
}

// followTarget enters the watched namespace anew when it moved, and points
// the samples and captures at it. The history, of the namespace left, is
// dropped: its counters are another namespace's, and their differences
// with the new one's would be nonsense.
func (w *Watcher) followTarget() {
	if w.follow == nil || !w.follow.refresh() {
		return
	}
	w.cfg.Capture.Host.NS, w.cfg.Capture.NetNS = w.follow.ref.thread(), w.follow.netNS()
	if w.cfg.Capture.Samplers == nil {
		_, w.samplers = collectors.DefaultSet(w.cfg.Capture.Host)
	}
	w.hist = NewHistory(w.hist.maxSamples, w.cfg.HistoryBytes)
}

// History is the watcher's in-memory history.
func (w *Watcher) History() *History { return w.hist }

// Run checks every cfg.Every until ctx ends, triggering on cfg.Failures
// consecutive failed cycles. A capture in progress when ctx ends is finished
// within its deadline; the restart command is then not run, and one already
// running gets SIGTERM (its process group), then SIGKILL after thenGrace.
// Run returns nil when ctx ended it, or an error wrapping
// ErrRestartInterrupted when that cut a restart command short.
func (w *Watcher) Run(ctx context.Context) error {
	w.log.Info("watching", "checks", w.checkNames(), "every", w.cfg.Every.String(),
		"failures", w.cfg.Failures, "cooldown", w.cfg.Cooldown.String(),
		"history_samples", w.hist.maxSamples, "out", w.cfg.Capture.Dir)
	if n := w.cfg.Capture.NetNS; w.follow != nil {
		w.log.Info("watching inside a network namespace", "netns", n.String(), "inode", n.Inode, "path", n.Path, "pid", n.PID)
	}
	if w.node != nil {
		w.log.Info("watching every network namespace", "max_netns", w.cfg.MaxNetNS,
			"captures_per_minute", w.cfg.CapturesPerMinute, "discover", w.cfg.Discover.String())
	}
	// A bundle written shortly before this watcher started (its previous run,
	// restarted with the service, or another watchdog's capture) starts the
	// cool-down: the first bundle of an incident is the valuable one. Not
	// with AllNetNS, whose cool-down is each namespace's own.
	if b, at, ok := w.recentBundle(); ok && w.node == nil {
		w.cooldownUntil = at.Add(w.cfg.Cooldown)
		w.log.Info("cool-down from a recent bundle", "bundle", b, "until", w.cooldownUntil.UTC().Format(time.RFC3339))
	}
	if w.cfg.Upload != nil {
		uctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { w.uploadLoop(uctx) })
		defer wg.Wait()
		defer cancel()
	}
	clock := w.cfg.Clock
	start := clock.Now()
	for {
		inc := w.Cycle(ctx)
		now := clock.Now()
		select {
		case <-ctx.Done():
			w.log.Info("stopping", "cause", context.Cause(ctx).Error())
			if inc != nil && errors.Is(inc.ThenErr, ErrRestartInterrupted) {
				return inc.ThenErr
			}
			return nil
		case <-clock.After(nextTick(start, w.cfg.Every, now).Sub(now)):
		case req := <-w.alerts:
			inc = w.alertTrigger(ctx, req.alert)
			if inc != nil && errors.Is(inc.ThenErr, ErrRestartInterrupted) && ctx.Err() != nil {
				return inc.ThenErr
			}
		}
	}
}

// Once runs one check cycle, for timers and cron: up to cfg.Failures
// attempts cfg.Every apart, ending at the first that passes. When none
// passes it triggers (capture, then the restart command) unless a bundle of
// this host newer than cfg.Cooldown is already in the output directory, in
// which case only the restart command runs. It returns nil when the checks
// passed.
func (w *Watcher) Once(ctx context.Context) *Incident {
	if len(w.cfg.Checks) == 0 {
		return nil
	}
	var last Result
	for attempt := 1; attempt <= w.cfg.Failures; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return nil
			case <-w.cfg.Clock.After(w.cfg.Every):
			}
		}
		w.followTarget()
		w.sample(ctx)
		res, ok := w.runChecks(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if ok {
			w.log.Info("checks passed", "attempt", attempt, "detail", res.Detail, "latency_ms", ms(res.Latency))
			return nil
		}
		last = res
		w.logFailure(res, attempt, false)
	}
	var inc *Incident
	if b, _, ok := w.recentBundle(); ok {
		w.log.Warn("recent bundle within the cool-down: not capturing again", "bundle", b, "cooldown", w.cfg.Cooldown.String())
		inc = &Incident{Failed: last, CaptureErr: fmt.Errorf("%s is newer than the %v cool-down: %w", b, w.cfg.Cooldown, ErrRecentBundle)}
		w.cfg.Metrics.observeCapture("", inc.CaptureErr, w.cfg.Clock.Now())
		w.restart(ctx, inc)
	} else {
		inc = w.trigger(ctx, last)
	}
	if w.cfg.Upload != nil && ctx.Err() == nil {
		// After the restart, one round: what is not sent stays pending
		// for the next run or snapdiag push --pending.
		w.uploadPending(ctx)
	}
	return inc
}

// recentBundle returns the newest bundle of this host in the output
// directory and its modification time, if it is younger than the cool-down.
func (w *Watcher) recentBundle() (string, time.Time, bool) {
	if w.cfg.Cooldown <= 0 {
		return "", time.Time{}, false
	}
	files, err := ListBundles(w.cfg.Capture.Dir, w.host)
	if err != nil || len(files) == 0 {
		return "", time.Time{}, false
	}
	info, err := os.Lstat(filepath.Join(w.cfg.Capture.Dir, files[0].Name))
	if err != nil || w.cfg.Clock.Now().Sub(info.ModTime()) >= w.cfg.Cooldown {
		return "", time.Time{}, false
	}
	return files[0].Name, info.ModTime(), true
}

// Cycle runs one cycle of the loop: a history sample, the checks, and a
// trigger when the failures add up outside a cool-down. It returns the
// incident when it triggered one.
func (w *Watcher) Cycle(ctx context.Context) *Incident {
	if w.node != nil {
		return w.nodeCycle(ctx)
	}
	w.followTarget()
	w.sample(ctx)
	if len(w.cfg.Checks) == 0 {
		// Metrics and history only (watch --metrics with no --check).
		return nil
	}
	res, ok := w.runChecks(ctx)
	if ctx.Err() != nil {
		// Checks cut by the stop signal say nothing about the service.
		return nil
	}
	now := w.cfg.Clock.Now()
	if ok {
		if !w.healthy {
			w.log.Info("checks pass again", "after_failures", w.consecutive, "latency_ms", ms(res.Latency))
		} else {
			w.log.Debug("checks passed", "detail", res.Detail, "latency_ms", ms(res.Latency))
		}
		w.healthy, w.consecutive = true, 0
		return nil
	}
	w.healthy = false
	if now.Before(w.cooldownUntil) {
		// Failures in the cool-down do not count toward the next trigger:
		// the restart just ran and gets the cool-down to take effect.
		w.logFailure(res, 0, true)
		return nil
	}
	w.consecutive++
	w.logFailure(res, w.consecutive, false)
	if w.consecutive < w.cfg.Failures {
		return nil
	}
	inc := w.trigger(ctx, res)
	w.consecutive = 0
	w.cooldownUntil = w.cfg.Clock.Now().Add(w.cfg.Cooldown)
	if w.cfg.Cooldown > 0 {
		w.log.Info("cool-down started", "until", w.cooldownUntil.UTC().Format(time.RFC3339))
	}
	return inc
}

func (w *Watcher) logFailure(res Result, consecutive int, cooldown bool) {
	attrs := []any{
		"kind", string(res.Check.Kind), "target", res.Check.Target, "result", res.Status(),
		"error", errString(res.Err), "latency_ms", ms(res.Latency),
	}
	if cooldown {
		w.log.Warn("check failed in cool-down; not capturing", append(attrs, "cooldown", true,
			"cooldown_left", w.cooldownUntil.Sub(w.cfg.Clock.Now()).Round(time.Second).String())...)
		return
	}
	w.log.Warn("check failed", append(attrs, "consecutive", consecutive, "of", w.cfg.Failures, "cooldown", false)...)
}

// sample adds one history sample, bounded in time. A failed sample is logged
// and what it read is kept: a partial sample still shows the counters it has.
func (w *Watcher) sample(ctx context.Context) {
	if w.hist.maxSamples == 0 && w.cfg.Metrics == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	s, err := collectors.TakeSample(sctx, w.cfg.Capture.Host, w.samplers)
	if err != nil && ctx.Err() == nil {
		w.log.Debug("history sample incomplete", "error", err.Error())
	}
	if len(s.Files) > 0 {
		w.hist.Add(s)
		if w.cfg.Metrics != nil {
			w.cfg.Metrics.observeSample(s, w.lastListeners(), collectors.ReadSysctls(w.cfg.Capture.Host, analyze.ListenSysctls()))
		}
	}
}

// lastListeners returns the listeners of the last sample as the listeners
// sampler produced them, or nil when the samplers have none.
func (w *Watcher) lastListeners() []bundle.Listener {
	for _, s := range w.samplers {
		if l, ok := s.(*collectors.Listeners); ok {
			return l.Last()
		}
	}
	return nil
}

// FillHistory takes samples back to back until the history holds n of them,
// for measuring the watcher's cost with a full history without waiting for
// it to fill.
func (w *Watcher) FillHistory(ctx context.Context, n int) {
	for i := 0; i < n && ctx.Err() == nil; i++ {
		w.sample(ctx)
	}
}

// runChecks runs every check at once and returns the first failure in
// configuration order, or the slowest pass when all passed.
func (w *Watcher) runChecks(ctx context.Context) (Result, bool) {
	results := make([]Result, len(w.cfg.Checks))
	if len(w.cfg.Checks) == 1 {
		results[0] = w.cfg.Checks[0].Run(ctx)
	} else {
		var wg sync.WaitGroup
		for i, c := range w.cfg.Checks {
			wg.Go(func() { results[i] = c.Run(ctx) })
		}
		wg.Wait()
	}
	w.cfg.Metrics.observeChecks(results)
	best := results[0]
	for _, r := range results {
		if !r.OK {
			return r, false
		}
		if r.Latency > best.Latency {
			best = r
		}
	}
	return best, true
}

// trigger captures, then runs the restart command. The capture runs to its
// own deadline even when ctx ends (a stop signal must not cost the bundle);
// the restart command runs only while ctx is live. The restart runs even when
// no bundle could be written: the service's recovery comes first.
func (w *Watcher) trigger(ctx context.Context, failed Result) *Incident {
	inc := &Incident{Failed: failed}
	w.cfg.Metrics.observeTrigger(SourceCheck)
	w.log.Warn("triggered: capturing", "kind", string(failed.Check.Kind), "target", failed.Check.Target,
		"error", errString(failed.Err), "history_samples", w.hist.Len(), "history_bytes", w.hist.Bytes())
	inc.Bundle, inc.CaptureErr = w.capture(context.WithoutCancel(ctx), bundle.Trigger{Reason: w.reason(failed), Check: failed.Manifest()})
	if inc.CaptureErr != nil {
		w.log.Error("no bundle written", "error", inc.CaptureErr.Error())
	}
	w.restart(ctx, inc)
	return inc
}

// capture writes one bundle with trigger trig under the output directory's
// lock and applies retention, still under the lock; the metrics count its
// outcome.
func (w *Watcher) capture(ctx context.Context, trig bundle.Trigger) (string, error) {
	opts := w.cfg.Capture
	opts.Trigger = trig
	opts.Samplers = w.samplers
	opts.History = w.hist.Samples()
	return w.captureOpts(ctx, opts)
}

// captureOpts writes one bundle with opts as capture does (the output
// directory's lock, retention); the metrics count its outcome.
func (w *Watcher) captureOpts(ctx context.Context, opts collectors.Options) (string, error) {
	path, err := w.captureLocked(ctx, opts)
	w.cfg.Metrics.observeCapture(path, err, w.cfg.Clock.Now())
	return path, err
}

func (w *Watcher) captureLocked(ctx context.Context, opts collectors.Options) (string, error) {
	dir := w.cfg.Capture.Dir
	if err := w.cfg.Retention.CheckFree(dir); err != nil {
		return "", err
	}
	start := time.Now()
	lock, err := acquireLock(ctx, dir, w.cfg.LockWait, w.cfg.Clock)
	if err != nil {
		return "", err
	}
	defer func() {
		if err := lock.Release(); err != nil {
			w.log.Error("release lock", "error", err.Error())
		}
	}()
	if waited := time.Since(start); waited > lockPoll {
		w.log.Info("lock acquired", "waited", waited.Round(time.Millisecond).String())
	}
	// Another process may have filled the disk while this one waited.
	if err := w.cfg.Retention.CheckFree(dir); err != nil {
		return "", err
	}
	var mark *ship.CommitMark
	if w.cfg.Upload != nil {
		// The bundle is marked pending inside its commit, before it
		// appears: a watch killed at any point leaves it marked.
		mark = w.cfg.Upload.CommitMark()
		opts.BeforeCommit = mark.BeforeCommit
	}
	res, err := collectors.Capture(ctx, opts)
	if err != nil {
		if mark != nil {
			if err := mark.Abandon(); err != nil {
				w.log.Error("mark bundle pending for upload", "error", err.Error())
			}
		}
		return "", err
	}
	if w.killedAfterCommit != nil && w.killedAfterCommit() {
		// A test's stand-in for a process killed right here.
		return res.Path, nil
	}
	m := res.Manifest
	var bad []string
	for _, st := range m.Collectors {
		if st.Status == bundle.StatusFailed || st.Status == bundle.StatusTimeout {
			bad = append(bad, st.Name+" "+string(st.Status))
		}
	}
	w.log.Info("bundle written", "path", res.Path, "duration", time.Since(start).Round(time.Millisecond).String(),
		"history_samples", m.Options.History, "samples", m.Options.Samples, "deadline_hit", m.DeadlineHit,
		"collectors_not_ok", strings.Join(bad, ", "))
	if w.cfg.Bundles != nil {
		fmt.Fprintln(w.cfg.Bundles, res.Path)
	}
	if w.cfg.Upload != nil {
		if mark.Err != nil {
			// The sidecar could not be written inside the commit: say
			// so and try once more now that the bundle is there.
			w.log.Error("mark bundle pending for upload", "bundle", res.Path, "error", mark.Err.Error())
			w.markPending(res.Path)
		} else {
			w.countPending()
		}
		w.kickUpload()
	}
	removed, pendingRemoved, err := w.cfg.Retention.apply(dir, w.host, res.Path, w.unmarked.holds)
	if len(removed) > 0 {
		w.log.Info("retention removed old bundles", "removed", removed)
	}
	if len(pendingRemoved) > 0 {
		w.log.Warn("retention removed bundles never uploaded: --keep or --max-bytes left no other choice", "removed", pendingRemoved)
	}
	if err != nil {
		w.log.Error("retention", "error", err.Error())
	}
	return res.Path, nil
}

func (w *Watcher) reason(failed Result) string {
	if w.cfg.Reason != "" {
		return w.cfg.Reason
	}
	return fmt.Sprintf("snapdiag watch: %s check %s %s: %s", failed.Check.Kind, failed.Check.Target, failed.Status(), errString(failed.Err))
}

// restart runs the restart command, if there is one and ctx is live.
func (w *Watcher) restart(ctx context.Context, inc *Incident) {
	if w.cfg.Then == "" {
		return
	}
	if ctx.Err() != nil {
		w.log.Warn("stopping: restart command not run", "then", w.cfg.Then)
		return
	}
	out := w.cfg.ThenOutput
	if out == nil {
		out = io.Discard
	}
	env := append(os.Environ(), "SNAPDIAG_BUNDLE="+inc.Bundle)
	if inc.Failed.Check != nil {
		env = append(env, "SNAPDIAG_CHECK="+inc.Failed.Check.String(), "SNAPDIAG_CHECK_ERROR="+errString(inc.Failed.Err))
	}
	if inc.Alert != nil {
		env = append(env, "SNAPDIAG_ALERT="+inc.Alert.Labels["alertname"])
	}
	// A stop signal ends the restart too: its process group gets SIGTERM,
	// then SIGKILL after thenGrace. Letting it run to --then-timeout (5 min
	// by default) would make the watchdog deaf to systemctl stop and to
	// Ctrl-C, with no checks and no logs meanwhile; the restart's own
	// SIGTERM handling is the place to leave the service in a sane state.
	tctx, cancel := context.WithTimeout(ctx, w.cfg.ThenTimeout)
	defer cancel()
	start := time.Now()
	w.log.Info("running restart command", "then", w.cfg.Then)
	inc.ThenRan = true
	inc.ThenErr = runShell(tctx, w.cfg.Then, thenGrace, env, out, out)
	if inc.ThenErr != nil && ctx.Err() != nil {
		inc.ThenErr = fmt.Errorf("%w: %w", ErrRestartInterrupted, inc.ThenErr)
		w.log.Error("restart command interrupted", "error", inc.ThenErr.Error(), "duration", time.Since(start).Round(time.Millisecond).String())
		return
	}
	if inc.ThenErr != nil {
		w.log.Error("restart command failed", "error", inc.ThenErr.Error(), "duration", time.Since(start).Round(time.Millisecond).String())
		return
	}
	w.log.Info("restart command finished", "duration", time.Since(start).Round(time.Millisecond).String())
}

func (w *Watcher) checkNames() []string {
	out := make([]string, len(w.cfg.Checks))
	for i, c := range w.cfg.Checks {
		out[i] = c.String()
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
