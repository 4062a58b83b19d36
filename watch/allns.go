package watch

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/netns"
)

// Defaults of watch --all-netns.
const (
	// DefaultCapturesPerMinute bounds the captures of all namespaces
	// together: a node where many pods suffer at once (a shared upstream
	// down) gets a few bundles, not one per pod in a burst.
	DefaultCapturesPerMinute = 2
	// DefaultDiscover is how often the namespaces are looked for anew:
	// netns.Scan stats every process's namespace, which at 1s would cost
	// more than the look at the listeners.
	DefaultDiscover = 10 * time.Second
)

// nodeWatch is the state of watch --all-netns.
type nodeWatch struct {
	ns           collectors.NetNSWatch
	lastDiscover time.Time
	tracks       map[uint64]*nsTrack
	// captures are the start times of the captures of the last minute.
	captures []time.Time
	// warned are the namespaces whose failure to open was logged.
	warned map[uint64]bool
	count  int // namespaces at the last discovery, for logging changes
	// discovered is set once the first discovery was logged: it is logged
	// whatever it found, none included (a node whose only namespace is the
	// agent's own), so the log shows the agent has looked.
	discovered bool
}

// nsTrack is one namespace's trigger state: its own consecutive problem
// cycles and cool-down, so that one sick pod neither starves the others
// nor writes a bundle every cycle.
type nsTrack struct {
	consecutive   int
	since         time.Time // first cycle of the current run of problems
	cooldownUntil time.Time
}

// newNodeWatch checks the configuration of watch --all-netns.
func newNodeWatch(cfg *Config) (*nodeWatch, error) {
	switch {
	case len(cfg.Checks) > 0:
		// An active check per listener per cycle in every namespace would
		// cost a connection (and a TIME_WAIT) per pod per second; the
		// passive look at each listener's queues and drops sees the
		// listen path's troubles without adding to them.
		return nil, fmt.Errorf("--all-netns judges every listener by its queues and drops: it takes no --check")
	case cfg.Then != "":
		return nil, fmt.Errorf("--all-netns watches every pod of the node: a single restart command (--then) means nothing for them")
	case !cfg.Target.IsZero():
		return nil, fmt.Errorf("--all-netns watches every namespace: it takes no --netns, --pid or --container")
	case cfg.Webhook != nil:
		return nil, fmt.Errorf("--all-netns does not take alerts (--webhook) yet")
	case cfg.Metrics != nil && !cfg.Metrics.perNetNS:
		return nil, fmt.Errorf("--all-netns needs metrics labelled by namespace (MetricsConfig.PerNetNS)")
	}
	if cfg.CapturesPerMinute <= 0 {
		cfg.CapturesPerMinute = DefaultCapturesPerMinute
	}
	if cfg.Discover <= 0 {
		cfg.Discover = DefaultDiscover
	}
	cfg.History = 0 // the watcher's own namespace (a pod's) says nothing
	return &nodeWatch{ns: collectors.NetNSWatch{Max: cfg.MaxNetNS}, tracks: map[uint64]*nsTrack{}, warned: map[uint64]bool{}}, nil
}

// nsAttrs are the log attributes naming namespace n: who owns it, and its
// inode.
func nsAttrs(n bundle.NetNS) []any {
	attrs := []any{"netns", n.String(), "inode", n.Inode}
	if o := n.Owner; o != nil {
		attrs = append(attrs, "container_id", bundle.ShortID(o.ContainerID))
		if p := o.Pod; p != nil {
			attrs = append(attrs, "pod", p.Name, "pod_namespace", p.Namespace)
		}
	}
	return attrs
}

// discover looks for new and gone namespaces and logs what changed.
func (w *Watcher) discover(ctx context.Context) {
	nw := w.node
	d, err := nw.ns.Discover(ctx, w.cfg.Capture.Host)
	if err != nil {
		w.log.Error("namespace discovery failed", "error", err.Error())
		return
	}
	for _, n := range d.Gone {
		delete(nw.tracks, n.Inode)
		delete(nw.warned, n.Inode)
		w.log.Debug("namespace gone", nsAttrs(n)...)
	}
	for _, n := range d.New {
		w.log.Debug("namespace found", nsAttrs(n)...)
	}
	// One line for all the namespaces newly found unwatchable (without
	// CAP_SYS_ADMIN, that is all of them), each once.
	var first error
	failed := 0
	for ino, err := range d.Failed {
		if !nw.warned[ino] {
			nw.warned[ino] = true
			failed++
			first = cmp.Or(first, err)
			w.log.Debug("namespace not watched", "inode", ino, "error", err.Error())
		}
	}
	if failed > 0 {
		w.log.Warn("namespaces not watched", "count", failed, "error", first.Error())
	}
	if !nw.discovered || d.Count != nw.count || len(d.New) > 0 || len(d.Gone) > 0 {
		w.log.Info("namespaces discovered", "count", d.Count, "watched", d.Held,
			"new", len(d.New), "gone", len(d.Gone), "denied_processes", d.Denied)
		nw.count, nw.discovered = d.Count, true
	}
}

// nodeCycle is a cycle of watch --all-netns: the namespaces looked for
// anew every cfg.Discover, each one's listeners read, and a capture of
// each namespace whose problem has lasted cfg.Failures cycles outside its
// cool-down, within cfg.CapturesPerMinute. It returns the first incident.
func (w *Watcher) nodeCycle(ctx context.Context) *Incident {
	nw, clock := w.node, w.cfg.Clock
	now := clock.Now()
	if nw.lastDiscover.IsZero() {
		w.seedCooldowns()
	}
	if nw.lastDiscover.IsZero() || now.Sub(nw.lastDiscover) >= w.cfg.Discover {
		w.discover(ctx)
		nw.lastDiscover = now
	}
	sts := nw.ns.Poll(ctx, w.cfg.Capture.Host)
	if ctx.Err() != nil {
		return nil
	}
	w.cfg.Metrics.observeNode(sts)
	type dueNS struct {
		st collectors.NetNSStatus
		t  *nsTrack
	}
	var due []dueNS
	for _, st := range sts {
		t := nw.tracks[st.NetNS.Inode]
		if t == nil {
			t = &nsTrack{}
			nw.tracks[st.NetNS.Inode] = t
		}
		if st.Err != nil {
			w.log.Debug("namespace not read", append(nsAttrs(st.NetNS), "error", st.Err.Error())...)
		}
		p := st.Problem
		if p == nil || p.Kind == bundle.ProblemPort {
			if t.consecutive > 0 {
				w.log.Info("listener healthy again", append(nsAttrs(st.NetNS), "after_failures", t.consecutive)...)
			}
			t.consecutive = 0
			continue
		}
		attrs := append(nsAttrs(st.NetNS), "problem", p.Kind, "listener", p.Listener, "detail", p.Detail)
		if now.Before(t.cooldownUntil) {
			w.log.Debug("listener problem in cool-down; not capturing", append(attrs,
				"cooldown_left", t.cooldownUntil.Sub(now).Round(time.Second).String())...)
			continue
		}
		t.consecutive++
		if t.consecutive == 1 {
			t.since = now
		}
		w.log.Warn("listener problem", append(attrs, "consecutive", t.consecutive, "of", w.cfg.Failures)...)
		if t.consecutive >= w.cfg.Failures {
			due = append(due, dueNS{st, t})
		}
	}
	// The longest-suffering first: a namespace the budget held back is
	// served before one that fell sick since.
	slices.SortFunc(due, func(a, b dueNS) int {
		return cmp.Or(a.t.since.Compare(b.t.since), cmp.Compare(a.st.NetNS.Inode, b.st.NetNS.Inode))
	})
	var first *Incident
	for _, d := range due {
		now := clock.Now()
		nw.captures = slices.DeleteFunc(nw.captures, func(at time.Time) bool { return now.Sub(at) >= time.Minute })
		if len(nw.captures) >= w.cfg.CapturesPerMinute {
			// It stays due: the next cycle with budget captures it.
			w.log.Warn("capture budget spent; not capturing", append(nsAttrs(d.st.NetNS),
				"captures_per_minute", w.cfg.CapturesPerMinute)...)
			continue
		}
		nw.captures = append(nw.captures, now)
		inc := w.nsTrigger(ctx, d.st)
		d.t.consecutive = 0
		d.t.cooldownUntil = clock.Now().Add(w.cfg.Cooldown)
		if first == nil {
			first = inc
		}
		if ctx.Err() != nil {
			break
		}
	}
	return first
}

// seedCooldowns starts the cool-down of every namespace that a bundle of
// this host in the output directory, younger than the cool-down and
// written by watch --all-netns, captured: an agent restarted (its pod
// rolled out again) does not capture the same incidents again. Only the
// manifests of those bundles are looked at, at most Retention keeps.
func (w *Watcher) seedCooldowns() {
	if w.cfg.Cooldown <= 0 {
		return
	}
	dir := w.cfg.Capture.Dir
	files, err := ListBundles(dir, w.host)
	if err != nil {
		return
	}
	now := w.cfg.Clock.Now()
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		info, err := os.Lstat(path)
		if err != nil || now.Sub(info.ModTime()) >= w.cfg.Cooldown {
			continue
		}
		b, err := bundle.Open(path, bundle.Limits{})
		if err != nil {
			continue
		}
		m := b.Manifest()
		b.Close()
		if m.NetNS == nil || m.Trigger.Listener == nil {
			continue
		}
		t := w.node.tracks[m.NetNS.Inode]
		if t == nil {
			t = &nsTrack{}
			w.node.tracks[m.NetNS.Inode] = t
		}
		if until := info.ModTime().Add(w.cfg.Cooldown); until.After(t.cooldownUntil) {
			t.cooldownUntil = until
			w.log.Info("cool-down from a recent bundle", append(nsAttrs(*m.NetNS), "bundle", f.Name,
				"until", until.UTC().Format(time.RFC3339))...)
		}
	}
}

// nsTrigger captures namespace st.NetNS, as watch --netns would: the
// collectors read it from a thread that entered it, and the manifest names
// it and its owner; the trigger names the listener and what was seen.
func (w *Watcher) nsTrigger(ctx context.Context, st collectors.NetNSStatus) *Incident {
	n, p := st.NetNS, st.Problem
	inc := &Incident{NetNS: &n, Listener: p}
	w.log.Warn("triggered by a listener: capturing", append(nsAttrs(n), "problem", p.Kind, "listener", p.Listener, "detail", p.Detail)...)
	th, err := netns.Enter(n.Path)
	if err == nil && th.Inode() != n.Inode {
		th.Close()
		err = fmt.Errorf("network namespace %d is gone: %s is now namespace %d", n.Inode, n.Path, th.Inode())
	}
	if err != nil {
		inc.CaptureErr = err
		w.log.Error("no bundle written", append(nsAttrs(n), "error", err.Error())...)
		return inc
	}
	defer th.Close()
	opts := w.cfg.Capture
	opts.Host.NS = th
	opts.NetNS = &n
	_, opts.Samplers = collectors.DefaultSet(opts.Host)
	opts.History = nil
	reason := w.cfg.Reason
	if reason == "" {
		reason = fmt.Sprintf("snapdiag watch --all-netns: %s: %s", n.String(), p.Detail)
	}
	opts.Trigger = bundle.Trigger{Reason: reason, Listener: p}
	inc.Bundle, inc.CaptureErr = w.captureOpts(context.WithoutCancel(ctx), opts)
	if inc.CaptureErr != nil {
		w.log.Error("no bundle written", append(nsAttrs(n), "error", inc.CaptureErr.Error())...)
	}
	return inc
}
