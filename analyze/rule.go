package analyze

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Rule is one diagnosis: a stable id and a check that reads a Snapshot.
type Rule struct {
	// ID names the rule; the findings it returns carry finding ids, which may
	// differ (one rule can tell apart several look-alikes).
	ID    string
	Check func(*Snapshot) []Finding
	// Global is true for a rule about the host as a whole, which runs
	// once over a whole-node bundle's top level; the others run once per
	// network namespace too.
	Global bool
}

// Rules returns the rule set, in a fixed order.
//
// Per namespace are the rules that read what each network namespace has of
// its own: /proc/net/netstat and snmp (the TcpExt and Tcp counters are
// per netns), its listeners and their queues, its net.ipv4 sysctls, its
// socket table and packets. Global are the rules whose evidence is the
// host's whatever the namespace, and which would otherwise be repeated once
// per namespace: the conntrack table and its limit (the capture records
// its statistics only at the top level), TCP memory (tcp_memory_allocated
// and the orphan count are one kernel-wide pool), the file table
// (fs.file-nr) and the kernel log, softnet (per CPU, not per namespace),
// the NICs (the physical ones are in the host's namespace) and the
// bundle's own completeness.
func Rules() []Rule {
	return []Rule{
		{ID: "synqueue", Check: ruleSynQueue},
		{ID: "acceptqueue", Check: ruleAcceptQueue},
		{ID: "halfopen", Check: ruleOf(diagnoseHalfOpen)},
		{ID: "unreachable", Check: ruleOf(diagnoseUnreachable)},
		{ID: "conntrack", Check: ruleOf(diagnoseConntrack), Global: true},
		{ID: "timewait", Check: ruleOf(diagnoseTimeWait)},
		{ID: "ports", Check: ruleOf(diagnosePorts)},
		{ID: "memory", Check: ruleOf(diagnoseMemory), Global: true},
		{ID: "fd", Check: ruleFD, Global: true},
		{ID: "softnet", Check: ruleOf(diagnoseSoftnet), Global: true},
		{ID: "nicrx", Check: ruleNICRx, Global: true},
		{ID: "sysctl", Check: ruleSysctl},
		{ID: "history", Check: ruleOf(diagnoseHistory)},
		{ID: "bundle", Check: ruleOf(diagnoseBundle), Global: true},
	}
}

// Diagnosis is what a rule found, in typed fields, before it is put into
// words: the listener, the counters' movements, the limits and the kernel
// behaviour that applied, and the remedy chosen. Each rule diagnoses first
// and renders its finding from the diagnosis, so programs and tests read
// the facts here instead of in sentences. The concrete types, one or more
// per finding id: SynQueueDrop and ThreeQuarterDrop (syn-queue-overflow),
// CookieOverflow, AcceptQueueOverflow, HalfOpenClients, UnreachableClients,
// ConntrackFull, TimeWaitOverflow, PortExhaustion, TCPMemoryPressure,
// FDExhaustion and ProcessFDExhaustion, SoftnetDrops, NICRxDrops,
// RiskySysctl, DropHistory, BundleIncomplete and RuleFailure, all pointers.
type Diagnosis interface {
	// render writes the finding a person reads. s supplies what the prose
	// quotes as it stands: kernel log lines, packet-sample counts, the
	// sysctls' current values.
	render(s *Snapshot) Finding
}

// ruleOf makes the check of a rule that finds at most one thing: diagnose
// returns nil when there is nothing to report.
func ruleOf[T any, D interface {
	*T
	Diagnosis
}](diagnose func(*Snapshot) D) func(*Snapshot) []Finding {
	return func(s *Snapshot) []Finding {
		if d := diagnose(s); d != nil {
			return findings(s, d)
		}
		return nil
	}
}

// findings renders diagnoses into findings, each carrying its diagnosis.
func findings[D Diagnosis](s *Snapshot, ds ...D) []Finding {
	out := make([]Finding, 0, len(ds))
	for _, d := range ds {
		f := d.render(s)
		f.Diagnosis = d
		out = append(out, f)
	}
	return out
}

// RunRules applies rules to s. A rule that panics yields a finding about
// that rule instead of its findings; the other rules still run.
func RunRules(s *Snapshot, rules []Rule) []Finding {
	out := []Finding{}
	for _, r := range rules {
		out = append(out, runRule(s, r)...)
	}
	for i := range out {
		if out[i].Evidence == nil {
			out[i].Evidence = []Evidence{}
		}
		if out[i].Recommendations == nil {
			out[i].Recommendations = []Recommendation{}
		}
		for j := range out[i].Recommendations {
			if out[i].Recommendations[j].Commands == nil {
				out[i].Recommendations[j].Commands = []string{}
			}
		}
	}
	return out
}

func runRule(s *Snapshot, r Rule) (fs []Finding) {
	defer func() {
		if v := recover(); v != nil {
			stack := string(debug.Stack())
			if i := strings.Index(stack, "panic("); i >= 0 {
				stack = stack[i:]
			}
			if len(stack) > 1500 {
				stack = stack[:1500]
			}
			fs = findings(s, &RuleFailure{Rule: r.ID, Panic: fmt.Sprint(v), Stack: stack})
		}
	}()
	if r.Check == nil {
		return nil
	}
	return r.Check(s)
}

// RuleFailure diagnoses rule-error: a rule panicked, so its findings are
// missing from the report.
type RuleFailure struct {
	// Rule is the failed rule's id, Panic the value it panicked with, and
	// Stack the start of the goroutine's stack from the panic on.
	Rule  string
	Panic string
	Stack string
}

func (d *RuleFailure) render(*Snapshot) Finding {
	return Finding{
		ID:       IDRuleError,
		Severity: Warning,
		Title:    fmt.Sprintf("rule %s failed: its findings are missing from this report", d.Rule),
		Summary: fmt.Sprintf("The %s rule panicked on this bundle (%s). The other rules ran; "+
			"please report this with the bundle.", d.Rule, d.Panic),
		Evidence: []Evidence{{Source: "rule " + d.Rule, Metric: "panic", Note: d.Stack}},
	}
}
