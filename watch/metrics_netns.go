package watch

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
)

// netnsLabels are the variable labels that name a listener's namespace in
// the metrics of watch --all-netns: the namespace as named, and the pod,
// its Kubernetes namespace and the container that own it ("" when unknown).
var netnsLabels = []string{"netns", "pod", "namespace", "container"}

// nodeListener is one listener of watch --all-netns with its namespace's
// label values.
type nodeListener struct {
	l  bundle.Listener
	ns [4]string
}

// observeNode keeps the listeners of every namespace of a Poll, at most
// m.maxListeners of them, the fullest accept queues first: the number of
// series stays bounded whatever the node runs.
func (m *Metrics) observeNode(sts []collectors.NetNSStatus) {
	if m == nil {
		return
	}
	var rows []nodeListener
	total := 0
	for _, st := range sts {
		total += len(st.Listening)
		if len(st.Listening) == 0 {
			continue
		}
		n := st.NetNS
		var ns [4]string
		ns[0] = n.String()
		if o := n.Owner; o != nil {
			ns[3] = cmp.Or(o.Name, bundle.ShortID(o.ContainerID))
			if p := o.Pod; p != nil {
				ns[1], ns[2] = p.Name, p.Namespace
			}
		}
		for _, l := range st.Listening {
			rows = append(rows, nodeListener{l: l, ns: ns})
		}
	}
	fill := func(l *bundle.Listener) float64 { return float64(l.RecvQ) / float64(max(l.SendQ, 1)) }
	slices.SortFunc(rows, func(a, b nodeListener) int {
		return cmp.Or(cmp.Compare(fill(&b.l), fill(&a.l)), cmp.Compare(b.l.RecvQ, a.l.RecvQ),
			cmp.Compare(a.ns[0], b.ns[0]), cmp.Compare(a.l.Local, b.l.Local), cmp.Compare(a.l.Cookie, b.l.Cookie))
	})
	rows = rows[:min(len(rows), m.maxListeners)]
	// One namespace's SO_REUSEPORT group: "#2", "#3"... as for one host.
	seen := map[[2]string]int{}
	for i := range rows {
		k := [2]string{rows[i].ns[0], rows[i].l.Local}
		seen[k]++
		if c := seen[k]; c > 1 {
			rows[i].l.Local += "#" + strconv.Itoa(c)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.node, m.nodeTotal = rows, total
}

// collectNode sends the listeners of watch --all-netns. Called with m.mu
// held.
func (m *Metrics) collectNode(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(m.descs.listeners, float64(m.nodeTotal))
	gauge(m.descs.omitted, float64(m.nodeTotal-len(m.node)))
	d := m.listenerDesc
	for _, r := range m.node {
		l := &r.l
		labels := []string{l.Local, strconv.Itoa(l.Port), l.Comm, r.ns[0], r.ns[1], r.ns[2], r.ns[3]}
		gauge(d.acceptQueue, float64(l.RecvQ), labels...)
		gauge(d.acceptBacklog, float64(l.SendQ), labels...)
		if l.Drops != nil {
			ch <- prometheus.MustNewConstMetric(d.drops, prometheus.CounterValue, float64(*l.Drops), labels...)
		}
	}
}
