package analyze

import (
	"strings"
)

// Counter names one counter of a sample, flattened to "Group.Name":
// "TcpExt.ListenDrops", "Tcp.PassiveOpens", "Sockstat.TCP.tw",
// "Softnet.dropped", "Dev.eth0.rx_drop", "Conntrack.count". The rules name
// the counters they read only through the variables declared beside the
// parser that produces them (parse_netstat.go, parse_sockstat.go, ...), so a
// misspelt name does not compile; TestRuleCountersRecorded checks that every
// declared name is one a recorded kernel has shown. Other packages get
// Counters from a Snapshot (Snapshot.Counters) or from data (ParseCounter).
type Counter struct{ name string }

// String is the flattened name, "TcpExt.ListenDrops".
func (c Counter) String() string { return c.name }

// group is the part before the first dot: the key of Sample.Files.
func (c Counter) group() string {
	g, _, _ := strings.Cut(c.name, ".")
	return g
}

// ParseCounter names a counter read from data: a name a person typed or an
// evidence line's metric. Rules never call it; they use the declared
// counters.
func ParseCounter(name string) Counter { return Counter{name: name} }

// newCounter declares a counter of group. It is called only in the
// package-level declarations of the parse_*.go files, with literal
// arguments, which is what TestRuleCountersRecorded reads.
func newCounter(group, name string) Counter { return Counter{name: group + "." + name} }

// devField is one per-interface column of /proc/net/dev; the counter of an
// interface is "Dev.IFACE.FIELD".
type devField struct{ name string }

// newDevField declares a /proc/net/dev column (see newCounter).
func newDevField(name string) devField { return devField{name: name} }

// of is the field's counter for iface.
func (f devField) of(iface string) Counter {
	return Counter{name: devGroup + "." + iface + "." + f.name}
}

// iface returns the interface c belongs to when c is this field's counter.
func (f devField) iface(c Counter) (string, bool) {
	rest, ok := strings.CutPrefix(c.name, devGroup+".")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "."+f.name)
}
