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
}

// Rules returns the rule set, in a fixed order.
func Rules() []Rule {
	return []Rule{
		{ID: "synqueue", Check: ruleSynQueue},
		{ID: "acceptqueue", Check: ruleAcceptQueue},
		{ID: "halfopen", Check: ruleHalfOpen},
		{ID: "unreachable", Check: ruleUnreachable},
		{ID: "conntrack", Check: ruleConntrack},
		{ID: "timewait", Check: ruleTimeWait},
		{ID: "ports", Check: rulePorts},
		{ID: "memory", Check: ruleMemory},
		{ID: "fd", Check: ruleFD},
		{ID: "softnet", Check: ruleSoftnet},
		{ID: "nicrx", Check: ruleNICRx},
		{ID: "sysctl", Check: ruleSysctl},
		{ID: "history", Check: ruleHistory},
		{ID: "bundle", Check: ruleBundle},
	}
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
			fs = []Finding{{
				ID:       IDRuleError,
				Severity: Warning,
				Title:    fmt.Sprintf("rule %s failed: its findings are missing from this report", r.ID),
				Summary: fmt.Sprintf("The %s rule panicked on this bundle (%v). The other rules ran; "+
					"please report this with the bundle.", r.ID, v),
				Evidence: []Evidence{{Source: "rule " + r.ID, Metric: "panic", Note: stack}},
			}}
		}
	}()
	if r.Check == nil {
		return nil
	}
	return r.Check(s)
}
