package collectors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/netns"
)

// Defaults for a capture, used where a flag or an Options field is not set.
const (
	DefaultSamples     = 3
	DefaultInterval    = time.Second
	DefaultPacketWin   = 2 * time.Second
	DefaultDeadline    = 10 * time.Second
	DefaultSocketCap   = 200_000
	DefaultPacketLimit = 20_000
	DefaultPacketBytes = 16 << 20
)

// Options says what one capture does.
type Options struct {
	Dir      string // where the bundle goes; must exist
	Trigger  bundle.Trigger
	Samples  int
	Interval time.Duration
	// Deadline bounds the whole capture, writing the bundle included. When it
	// is near, collectors are cut and the bundle is written with what they had.
	Deadline time.Duration
	Host     Host
	Tool     bundle.Tool
	// MaxBytes bounds what the capture stages on disk (0: bundle.DefaultMaxBytes).
	MaxBytes int64
	// Progress, when set, is told about each collector as it ends.
	Progress func(bundle.CollectorStatus)
	// Collectors and Samplers replace the default set when not nil (the
	// watchdog passes its own samplers, whose caches its history warmed).
	Collectors []Collector
	Samplers   []Sampler
	// History holds samples taken before the capture, oldest first; they
	// become the bundle's first samples.
	History []HistorySample
	// Filter, when set, rewrites every member as it is written, and the
	// manifest and name at commit (capture --redact).
	Filter bundle.Filter
	// NetNS names the namespace the capture reads (Host.NS's, or the
	// process's own), for the manifest. Nil records the process's own
	// namespace as NamedBySelf, or Host.NS's inode alone.
	NetNS *bundle.NetNS
	// Priority is set when the process lowered its priority for the capture
	// (LowerPriority): the manifest records it, and the capture restores the
	// starting priority when collecting ends, to write the bundle in time.
	// Nil when it runs at the priority it was started with, which the
	// manifest then records as found.
	Priority *LowPriority
	// AllNetNS adds the other network namespaces of the host to the bundle
	// (capture --all-netns): an AllNetNS sampler beside the others.
	AllNetNS bool
	// BeforeCommit, when set, is called with the bundle's final path and
	// manifest just before the bundle appears there
	// (bundle.Writer.SetBeforeCommit): an upload marks it pending there, so
	// that it is never visible unmarked.
	BeforeCommit func(path string, m *bundle.Manifest)
}

// Result is what a capture produced.
type Result struct {
	Path     string
	Manifest *bundle.Manifest
}

// DefaultHost is the live system's Host with the default bounds.
func DefaultHost() Host {
	return Host{
		Proc: "/proc", Sys: "/sys", Dev: "/dev",
		SocketCap:    DefaultSocketCap,
		PacketWindow: DefaultPacketWin,
		PacketLimit:  DefaultPacketLimit,
		PacketBytes:  DefaultPacketBytes,
	}
}

// WithDefaults returns h with its zero fields filled from DefaultHost: the
// roots and the socket and packet bounds. Set fields, and the ports, are the
// caller's and stay. PacketWindow stays as given, because 0 means no packet
// sample.
func (h Host) WithDefaults() Host {
	d := DefaultHost()
	if h.Proc == "" {
		h.Proc = d.Proc
	}
	if h.Sys == "" {
		h.Sys = d.Sys
	}
	if h.Dev == "" {
		h.Dev = d.Dev
	}
	if h.SocketCap <= 0 {
		h.SocketCap = d.SocketCap
	}
	if h.PacketLimit <= 0 {
		h.PacketLimit = d.PacketLimit
	}
	if h.PacketBytes <= 0 {
		h.PacketBytes = d.PacketBytes
	}
	return h
}

// DefaultSet returns fresh instances of every collector and sampler. They keep
// per-capture state (caches, counts for the manifest), so each capture gets
// its own.
func DefaultSet(h Host) ([]Collector, []Sampler) {
	// Sockets first: its dump of the whole table is the capture's longest
	// path, and the collectors' goroutines start in this order; started
	// after the others, the dump began up to 60 ms late on a busy host.
	cs := []Collector{&Sockets{}, &System{}, &Sysctls{}, ProcNet{}, &Kmsg{}, &Processes{}}
	if h.PacketWindow > 0 {
		// Disabled, it has no entry: an entry would read like an empty sample.
		cs = append(cs, &Packets{})
	}
	return cs, []Sampler{Counters{}, &Listeners{}}
}

// commitReserve is the part of the deadline kept for writing the bundle: the
// collectors must stop early enough for the archive to be compressed, synced
// and renamed before the deadline.
func commitReserve(deadline time.Duration) time.Duration {
	return min(max(deadline/5, 100*time.Millisecond), 2*time.Second)
}

// Capture collects everything into one bundle in opts.Dir and returns its
// path. It returns an error only when no bundle could be written; collectors
// that failed are recorded in the manifest.
func Capture(ctx context.Context, opts Options) (Result, error) {
	start := time.Now()
	cost := startCost(start)
	if opts.Samples <= 0 {
		opts.Samples = DefaultSamples
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Deadline <= 0 {
		opts.Deadline = DefaultDeadline
	}
	h := opts.Host.WithDefaults()
	if h.Shared == nil {
		h.Shared = &Shared{}
	}
	hardCtx, cancelHard := context.WithDeadline(ctx, start.Add(opts.Deadline))
	defer cancelHard()
	collectCtx, cancel := context.WithDeadline(hardCtx, start.Add(opts.Deadline-commitReserve(opts.Deadline)))
	defer cancel()

	// A killed earlier run may have left staging folders; they are ours to remove.
	_, _ = bundle.CleanStale(opts.Dir, time.Minute)
	w, err := bundle.NewWriter(opts.Dir, opts.MaxBytes)
	if err != nil {
		return Result{}, err
	}
	defer w.Abort()
	if opts.Filter != nil {
		w.SetFilter(opts.Filter)
	}
	if opts.BeforeCommit != nil {
		w.SetBeforeCommit(opts.BeforeCommit)
	}

	hostFacts := HostFacts(h)
	defCs, defSs := DefaultSet(h)
	cs, ss := opts.Collectors, opts.Samplers
	if cs == nil {
		cs = defCs
	}
	if ss == nil {
		ss = defSs
	}
	if opts.AllNetNS {
		ss = append(slices.Clip(ss), &AllNetNS{LastSample: len(opts.History) + opts.Samples - 1})
	}
	for _, c := range cs {
		if _, ok := c.(*Sockets); ok && h.tableSmall() {
			h.Shared.table.arm()
		}
	}
	var histErr error
	if len(opts.History) > 0 {
		histErr = writeHistory(w.For("history"), opts.History)
	}
	r := &Runner{
		Collectors: cs, Samplers: ss, Samples: opts.Samples, Interval: opts.Interval,
		FirstSample: len(opts.History), Progress: opts.Progress,
	}
	// Collecting at a low priority is what spares the service; writing the
	// bundle is short, and at a low priority on a busy host it could overrun
	// the deadline. The priority is restored when collecting ends, or at
	// its deadline, when collectors cut short must return within the grace.
	prio := currentPriority()
	var (
		restoreOnce sync.Once
		restoreErr  error
		restored    bool
	)
	restore := func() {}
	if lp := opts.Priority; lp != nil {
		prio = lp.Applied
		restore = func() {
			restoreOnce.Do(func() {
				if restoreErr = lp.Restore(); restoreErr == nil {
					restored = true
				}
			})
		}
		stop := context.AfterFunc(collectCtx, restore)
		defer stop()
	}
	// Which namespace this is, for the manifest, at once: a few opens. For
	// one the process is in but that is not the host's, every process is
	// looked at to find the container that owns it. That does not depend
	// on what is collected, so it runs beside the collectors instead of
	// after them, and a search still going when they must stop leaves the
	// owner out, not the namespace.
	nsInfo := manifestNetNS(opts.NetNS, h)
	var owner chan *bundle.Owner
	if nsInfo != nil && nsInfo.NamedBy == bundle.NamedBySelf && !nsInfo.HostNS && nsInfo.Inode != 0 {
		owner = make(chan *bundle.Owner, 1)
		go func() { owner <- netns.NamespaceOwner(h.Proc, nsInfo.Inode) }()
	}
	statuses, anns, cut := r.Run(collectCtx, h, w)
	// Once.Do returns only after the first call, perhaps the AfterFunc's,
	// has finished: restored and restoreErr are settled.
	restore()
	prio.RestoredForWrite = restored
	if restoreErr != nil {
		prio.Error = strings.TrimPrefix(prio.Error+"; restore for the write: "+restoreErr.Error(), "; ")
	}
	if len(opts.History) > 0 {
		st := bundle.CollectorStatus{Name: "history", Status: bundle.StatusOK, Files: summarizeFiles(w.Files("history"))}
		if histErr != nil {
			st.Status, st.Error = bundle.StatusFailed, histErr.Error()
		}
		statuses = append(statuses, st)
	}

	m := &bundle.Manifest{
		Format:  bundle.Format,
		Tool:    opts.Tool,
		Host:    hostFacts,
		Trigger: opts.Trigger,
		Start:   start.UTC(),
		Options: bundle.Options{
			Ports:       h.Ports,
			Samples:     opts.Samples,
			History:     len(opts.History),
			IntervalMS:  ms(opts.Interval),
			SampleMS:    ms(h.PacketWindow),
			DeadlineMS:  ms(opts.Deadline),
			SocketCap:   h.SocketCap,
			PacketLimit: h.PacketLimit,
			Payload:     h.Payload,
		},
		Collectors:  statuses,
		DeadlineHit: cut || errors.Is(collectCtx.Err(), context.DeadlineExceeded) && anyTimeout(statuses),
	}
	if sig := (StopSignal{}); errors.As(context.Cause(collectCtx), &sig) {
		// A signal, not the deadline, cut the collectors short.
		m.DeadlineHit, m.StoppedBy, m.Signal = false, bundle.StoppedBySignal, sig.Name()
	} else if m.DeadlineHit {
		m.StoppedBy = bundle.StoppedByDeadline
	}
	m.NetNS = nsInfo
	if owner != nil {
		select {
		case nsInfo.Owner = <-owner:
		case <-collectCtx.Done():
			// Still looking when the collectors had to stop (a process
			// whose files hang, or a stop before it began): the
			// manifest's stopped_by says why the owner is missing.
			select {
			case nsInfo.Owner = <-owner:
			default:
			}
		}
	}
	for _, a := range anns {
		a.Annotate(m)
	}
	m.End = time.Now().UTC()
	m.Cost = cost.finish(m.End, prio)
	path, err := w.Commit(bundle.FileName(hostFacts.Hostname, start), m)
	if err != nil {
		return Result{}, fmt.Errorf("write bundle: %w", err)
	}
	return Result{Path: path, Manifest: m}, nil
}

// manifestNetNS is the namespace the manifest names: the caller's, else
// the one h reads.
func manifestNetNS(given *bundle.NetNS, h Host) *bundle.NetNS {
	switch {
	case given != nil:
		n := *given
		return &n
	case h.NS != nil:
		return &bundle.NetNS{Inode: h.NS.Inode(), NamedBy: bundle.NamedByNetNS}
	}
	// Its owner, if it is not the host's, is Capture's to find.
	n, err := netns.ResolveQuick(h.Proc, netns.Spec{})
	if err != nil {
		// A copy of /proc in a test has no namespace files.
		return nil
	}
	return &n
}

func anyTimeout(sts []bundle.CollectorStatus) bool {
	for _, s := range sts {
		if s.Status == bundle.StatusTimeout {
			return true
		}
	}
	return false
}

// DefaultDir is /var/lib/snapdiag when it exists or can be created and is
// writable, else the current directory.
func DefaultDir() string {
	const dir = "/var/lib/snapdiag"
	if err := os.MkdirAll(dir, 0o700); err == nil {
		if f, err := os.CreateTemp(dir, ".snapdiag-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return dir
		}
	}
	return "."
}
