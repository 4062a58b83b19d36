package watch

import (
	"cmp"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
)

// DefaultMetricsListeners bounds the listeners a scrape shows.
const DefaultMetricsListeners = 256

// Capture results counted by snapdiag_captures_total.
const (
	CaptureWritten  = "written"
	CaptureLocked   = "locked"
	CaptureLowSpace = "low_space"
	CaptureRecent   = "recent"
	CaptureFailed   = "failed"
)

// captureResults are the result label values, each exported from the start
// so that rate() sees the first capture of a kind.
var captureResults = []string{CaptureWritten, CaptureLocked, CaptureLowSpace, CaptureRecent, CaptureFailed}

// Trigger sources counted by snapdiag_triggers_total.
const (
	SourceCheck = "check"
	SourceAlert = "alert"
)

// Metrics serves the watcher's samples in the Prometheus exposition format.
// It keeps the last sample as the watcher took it and parses it at the
// first scrape that follows, with the parsers analyze uses: a scrape reads
// nothing from /proc, and a watcher nobody scrapes parses nothing.
type Metrics struct {
	maxListeners int
	version      string
	listenerDesc listenerDescs
	descs        otherDescs
	hostDescs    []*prometheus.Desc
	registry     *prometheus.Registry

	mu     sync.Mutex
	kernel analyze.KernelVersion
	raw    collectors.HistorySample
	// listeners are raw's listeners as the sampler produced them; nil when
	// they must be decoded from raw.
	listeners []bundle.Listener
	sysctls   analyze.Sysctls
	parsed    *parsedSample // of raw; nil until a scrape parses it
	checks    []checkState
	// captures counts capture outcomes by result, triggers by source.
	captures    map[string]uint64
	triggers    map[string]uint64
	lastCapture time.Time
	webhook     map[string]uint64
	// pending is how many bundles of the output directory wait for the
	// upload; pendingKnown is false until the watch has counted them (or
	// when it uploads nowhere).
	pending      int
	pendingKnown bool
	// slots holds the "#N" of each SO_REUSEPORT group's sockets on the
	// last page, by socket cookie (nameGroups).
	slots map[groupKey]map[uint64]int

	// perNetNS: the listeners are watch --all-netns's, node is the last
	// Poll's (the fullest), nodeTotal how many there were.
	perNetNS  bool
	node      []nodeListener
	nodeTotal int
}

// MetricsConfig configures NewMetrics.
type MetricsConfig struct {
	// MaxListeners bounds the listeners a scrape shows, the fullest first
	// (0: DefaultMetricsListeners).
	MaxListeners int
	// Version is the build's version, for snapdiag_build_info.
	Version string
	// ListenerLabels are constant labels on every per-listener metric: the
	// container and pod of the namespace the watch targets, when it targets
	// one. The watch reads one network namespace, so they are the same for
	// all its listeners.
	ListenerLabels map[string]string
	// PerNetNS is for watch --all-netns: every per-listener metric gets
	// the labels netns, pod, namespace and container of its namespace,
	// and those of SYN-RECV, which its LISTEN-only dumps do not count, are
	// left out.
	PerNetNS bool
}

type checkState struct {
	name    string
	up      bool
	latency time.Duration
	seen    bool
}

type listenerDescs struct {
	acceptQueue, acceptBacklog, synRecv, synLimit, drops *prometheus.Desc
}

type otherDescs struct {
	listeners, omitted, sampleTime, sysctl, checkUp, checkLatency,
	captures, triggers, lastCapture, buildInfo, webhook, pending *prometheus.Desc
}

// NewMetrics returns the metrics of a watcher; pass it in Config.Metrics.
func NewMetrics(cfg MetricsConfig) *Metrics {
	if cfg.MaxListeners <= 0 {
		cfg.MaxListeners = DefaultMetricsListeners
	}
	ll := []string{"listener", "port", "process"}
	cl := prometheus.Labels(cfg.ListenerLabels)
	if cfg.PerNetNS {
		ll, cl = append(ll, netnsLabels...), nil
	}
	m := &Metrics{
		perNetNS:     cfg.PerNetNS,
		maxListeners: cfg.MaxListeners,
		version:      cmp.Or(cfg.Version, "dev"),
		listenerDesc: listenerDescs{
			acceptQueue: prometheus.NewDesc("snapdiag_listener_accept_queue",
				"Connections waiting in the listener's accept queue (Recv-Q).", ll, cl),
			acceptBacklog: prometheus.NewDesc("snapdiag_listener_accept_queue_limit",
				"The listener's accept backlog in force (Send-Q: the listen() backlog capped by somaxconn).", ll, cl),
			synRecv: prometheus.NewDesc("snapdiag_listener_syn_recv",
				"Half-open requests (SYN-RECV) of the listener; the whole group's for SO_REUSEPORT sockets.", ll, cl),
			synLimit: prometheus.NewDesc("snapdiag_listener_syn_queue_limit",
				"Half-open requests the listener's SYN queue holds before SYNs are cookied or dropped, on this kernel with these sysctls.", ll, cl),
			drops: prometheus.NewDesc("snapdiag_listener_drops_total",
				"The listener socket's own drop counter (sk_drops): SYNs and handshakes it dropped. A 32-bit kernel counter that wraps.", ll, cl),
		},
		descs: otherDescs{
			listeners:    prometheus.NewDesc("snapdiag_listeners", "TCP listeners in the last sample.", nil, nil),
			omitted:      prometheus.NewDesc("snapdiag_listeners_omitted", "Listeners of the last sample left out of the per-listener metrics by --metrics-listeners (the emptiest).", nil, nil),
			sampleTime:   prometheus.NewDesc("snapdiag_sample_timestamp_seconds", "When the last sample was taken, Unix time.", nil, nil),
			sysctl:       prometheus.NewDesc("snapdiag_sysctl", "A listen-path sysctl's value at the last sample.", []string{"name"}, nil),
			checkUp:      prometheus.NewDesc("snapdiag_check_up", "1 when the check passed at its last run, 0 when it failed.", []string{"check"}, nil),
			checkLatency: prometheus.NewDesc("snapdiag_check_latency_seconds", "How long the check's last run took.", []string{"check"}, nil),
			captures:     prometheus.NewDesc("snapdiag_captures_total", "Captures the watch attempted, by result: written, or why no bundle was.", []string{"result"}, nil),
			triggers:     prometheus.NewDesc("snapdiag_triggers_total", "Triggers by source: failed checks, or a matching Alertmanager alert.", []string{"source"}, nil),
			lastCapture:  prometheus.NewDesc("snapdiag_last_capture_timestamp_seconds", "When the last bundle was written, Unix time.", nil, nil),
			buildInfo:    prometheus.NewDesc("snapdiag_build_info", "Always 1; the labels say which snapdiag runs.", []string{"version", "goversion"}, nil),
			webhook:      prometheus.NewDesc("snapdiag_webhook_requests_total", "Alertmanager webhook requests, by what became of them.", []string{"result"}, nil),
			pending:      prometheus.NewDesc("snapdiag_bundles_pending_upload", "Bundles in the output directory not yet in the --upload store (pending sidecar present).", nil, nil),
		},
		captures: map[string]uint64{},
		triggers: map[string]uint64{},
		webhook:  map[string]uint64{},
	}
	for _, c := range analyze.LiveCounters() {
		m.hostDescs = append(m.hostDescs, prometheus.NewDesc("snapdiag_"+counterMetric(c)+"_total",
			"The kernel's "+c.String()+" counter (/proc/net/netstat), cumulative since boot.", nil, nil))
	}
	// Not the pedantic registry: it checks every metric of every scrape
	// against the descriptions, which TestPromtoolCheckMetrics does once.
	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(m)
	return m
}

// counterMetric is a counter's name in Prometheus's snake case:
// TcpExt.TCPReqQFullDrop is tcpext_tcp_req_q_full_drop.
func counterMetric(c analyze.Counter) string {
	group, name, _ := strings.Cut(c.String(), ".")
	var b strings.Builder
	b.WriteString(strings.ToLower(group))
	b.WriteByte('_')
	isUpper := func(r byte) bool { return r >= 'A' && r <= 'Z' }
	for i := 0; i < len(name); i++ {
		r := name[i]
		if i > 0 && isUpper(r) && (!isUpper(name[i-1]) || i+1 < len(name) && !isUpper(name[i+1]) && name[i+1] != '_') {
			b.WriteByte('_')
		}
		b.WriteByte(strings.ToLower(string(r))[0])
	}
	return b.String()
}

// Handler serves the metrics page.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the registry the page is gathered from.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// setKernel records the release of the kernel the samples come from.
func (m *Metrics) setKernel(release string) {
	if m == nil {
		return
	}
	k, _ := analyze.ParseKernelRelease(release)
	m.mu.Lock()
	m.kernel = k
	m.mu.Unlock()
}

// observeSample keeps s, the listeners in it (nil: decoded from s when a
// scrape needs them) and the listen-path sysctls read beside it, as the
// last sample.
func (m *Metrics) observeSample(s collectors.HistorySample, listeners []bundle.Listener, sysctls map[string]string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.raw, m.listeners, m.sysctls, m.parsed = s, listeners, sysctls, nil
}

// observeChecks records the checks' last results.
func (m *Metrics) observeChecks(results []Result) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.checks) != len(results) {
		m.checks = make([]checkState, len(results))
	}
	for i, r := range results {
		m.checks[i] = checkState{name: r.Check.String(), up: r.OK, latency: r.Latency, seen: true}
	}
}

// observeTrigger counts a trigger from source.
func (m *Metrics) observeTrigger(source string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.triggers[source]++
}

// observeCapture counts a capture by its outcome.
func (m *Metrics) observeCapture(path string, err error, at time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil && path != "":
		m.captures[CaptureWritten]++
		m.lastCapture = at
	case errors.Is(err, ErrLocked):
		m.captures[CaptureLocked]++
	case errors.Is(err, ErrLowSpace):
		m.captures[CaptureLowSpace]++
	case errors.Is(err, ErrRecentBundle):
		m.captures[CaptureRecent]++
	default:
		m.captures[CaptureFailed]++
	}
}

// observeWebhook counts a webhook request by result.
func (m *Metrics) observeWebhook(result string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.webhook[result]++
}

// observePending records how many bundles wait for the upload.
func (m *Metrics) observePending(n int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending, m.pendingKnown = n, true
}

// parsedSample is the last sample as a scrape shows it.
type parsedSample struct {
	values    map[analyze.Counter]int64
	listeners []liveListener
	total     int
}

// liveListener is one listener's row of the page.
type liveListener struct {
	name, port, process string
	cookie              uint64
	recvQ, sendQ        uint32
	synRecv, synLimit   int
	drops               *uint32
}

// parse reads m.raw, keeping the m.maxListeners fullest listeners. Called
// with m.mu held. Only the listeners kept get their labels built: a host
// with 10,000 listeners costs a sort of 10,000 small records per scrape.
func (m *Metrics) parse() *parsedSample {
	if m.parsed != nil {
		return m.parsed
	}
	// The page's host counters are all TcpExt: only /proc/net/netstat is
	// parsed, and listeners.json only when the sampler's slice is missing.
	files := map[string][]byte{bundle.SampleNetstat: m.raw.Files[bundle.SampleNetstat]}
	ls := m.listeners
	if ls == nil {
		files[bundle.SampleListeners] = m.raw.Files[bundle.SampleListeners]
	}
	s, _ := analyze.ParseSample(files)
	if ls == nil {
		ls = s.Listeners
	}
	sys := analyze.Sysctls(m.sysctls)
	type ranked struct {
		i     int
		fill  float64
		limit int
	}
	rank := make([]ranked, len(ls))
	for i, l := range ls {
		limit := analyze.SynQueueLimit(m.kernel, sys, l.SendQ)
		rank[i] = ranked{i: i, limit: limit,
			fill: max(float64(l.RecvQ)/float64(max(l.SendQ, 1)), float64(l.SynRecv)/float64(max(limit, 1)))}
	}
	slices.SortFunc(rank, func(a, b ranked) int {
		la, lb := &ls[a.i], &ls[b.i]
		return cmp.Or(cmp.Compare(b.fill, a.fill), cmp.Compare(lb.RecvQ, la.RecvQ), cmp.Compare(lb.SynRecv, la.SynRecv),
			cmp.Compare(la.Local, lb.Local), cmp.Compare(la.Cookie, lb.Cookie))
	})
	rank = rank[:min(len(rank), m.maxListeners)]
	p := &parsedSample{values: s.Values, total: len(ls), listeners: make([]liveListener, len(rank))}
	for k, r := range rank {
		l := &ls[r.i]
		p.listeners[k] = liveListener{
			name: l.Local, port: strconv.Itoa(l.Port), process: l.Comm, cookie: l.Cookie,
			recvQ: l.RecvQ, sendQ: l.SendQ, synRecv: l.SynRecv, synLimit: r.limit, drops: l.Drops,
		}
	}
	m.nameGroups(p.listeners)
	m.parsed = p
	return p
}

// groupKey is a listener's labels before a group's "#N".
type groupKey struct{ name, process string }

// nameGroups names the sockets of one SO_REUSEPORT group, which share
// address, port and often the process: the first keeps the plain name, each
// other gets "#2", "#3"... A socket keeps its number for as long as it is on
// the page (remembered by socket cookie from scrape to scrape), so when one
// closes the others' series, drops_total among them, do not move to another
// socket; a new socket takes the lowest free number. Called with m.mu held.
func (m *Metrics) nameGroups(ls []liveListener) {
	groups := map[groupKey][]*liveListener{}
	for i := range ls {
		k := groupKey{ls[i].name, ls[i].process}
		groups[k] = append(groups[k], &ls[i])
	}
	next := make(map[groupKey]map[uint64]int, len(groups))
	for k, members := range groups {
		old := m.slots[k]
		cur := make(map[uint64]int, len(members))
		used := map[int]bool{}
		// A socket without a cookie (none reported) cannot be followed:
		// it takes a free number each time.
		for _, l := range members {
			if s, ok := old[l.cookie]; ok && l.cookie != 0 {
				cur[l.cookie], used[s] = s, true
			}
		}
		slices.SortFunc(members, func(a, b *liveListener) int { return cmp.Compare(a.cookie, b.cookie) })
		slot := 1
		for _, l := range members {
			s, ok := cur[l.cookie]
			if !ok || l.cookie == 0 {
				for used[slot] {
					slot++
				}
				s, used[slot] = slot, true
				if l.cookie != 0 {
					cur[l.cookie] = s
				}
			}
			if s > 1 {
				l.name += "#" + strconv.Itoa(s)
			}
		}
		next[k] = cur
	}
	m.slots = next
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	d := m.listenerDesc
	for _, x := range []*prometheus.Desc{d.acceptQueue, d.acceptBacklog, d.synRecv, d.synLimit, d.drops} {
		ch <- x
	}
	o := m.descs
	for _, x := range []*prometheus.Desc{o.listeners, o.omitted, o.sampleTime, o.sysctl, o.checkUp, o.checkLatency,
		o.captures, o.triggers, o.lastCapture, o.buildInfo, o.webhook, o.pending} {
		ch <- x
	}
	for _, x := range m.hostDescs {
		ch <- x
	}
}

// Collect implements prometheus.Collector: the last sample, parsed once.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	o := m.descs
	gauge(o.buildInfo, 1, m.version, runtime.Version())
	for _, r := range captureResults {
		counter(o.captures, float64(m.captures[r]), r)
	}
	for _, s := range []string{SourceCheck, SourceAlert} {
		counter(o.triggers, float64(m.triggers[s]), s)
	}
	for _, r := range webhookResults {
		counter(o.webhook, float64(m.webhook[r]), r)
	}
	if m.pendingKnown {
		gauge(o.pending, float64(m.pending))
	}
	if !m.lastCapture.IsZero() {
		gauge(o.lastCapture, float64(m.lastCapture.UnixNano())/1e9)
	}
	for _, c := range m.checks {
		if !c.seen {
			continue
		}
		up := 0.0
		if c.up {
			up = 1
		}
		gauge(o.checkUp, up, c.name)
		gauge(o.checkLatency, c.latency.Seconds(), c.name)
	}
	if m.perNetNS {
		m.collectNode(ch)
		return
	}
	if m.raw.Files == nil {
		return
	}
	if t, err := time.Parse(time.RFC3339Nano, m.raw.Time.Wall); err == nil {
		gauge(o.sampleTime, float64(t.UnixNano())/1e9)
	}
	for _, name := range analyze.ListenSysctls() {
		if v, ok := analyze.Sysctls(m.sysctls).Int(name); ok {
			gauge(o.sysctl, float64(v), name)
		}
	}
	p := m.parse()
	for i, c := range analyze.LiveCounters() {
		if v, ok := p.values[c]; ok {
			// The kernel's counters are unsigned longs: the parser keeps
			// values above MaxInt64 as their two's-complement int64.
			counter(m.hostDescs[i], float64(uint64(v)))
		}
	}
	gauge(o.listeners, float64(p.total))
	gauge(o.omitted, float64(p.total-len(p.listeners)))
	d := m.listenerDesc
	for _, l := range p.listeners {
		gauge(d.acceptQueue, float64(l.recvQ), l.name, l.port, l.process)
		gauge(d.acceptBacklog, float64(l.sendQ), l.name, l.port, l.process)
		gauge(d.synRecv, float64(l.synRecv), l.name, l.port, l.process)
		gauge(d.synLimit, float64(l.synLimit), l.name, l.port, l.process)
		if l.drops != nil {
			counter(d.drops, float64(*l.drops), l.name, l.port, l.process)
		}
	}
}
