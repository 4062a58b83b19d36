package fleet_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/fleet"
)

// synIncident is a SYN-queue incident on host at day with these half-open
// sources, as a bundle's summary records it.
func synIncident(host string, day int, sources ...string) fleet.Result {
	return fleet.Result{
		Object: fleet.Object{Key: fmt.Sprintf("prod/%s/b%d-%d.tar.zst", host, day, len(sources))},
		Summary: fleet.Summary{CapturedAt: time.Date(2026, 11, day, 14, 0, 0, 0, time.UTC), Worst: analyze.Critical, HasFindings: true,
			Findings: []fleet.FindingRef{{ID: analyze.IDSynQueueOverflow, Severity: analyze.Critical}}, SynQueue: true, HalfOpen: sources},
	}
}

// TestClassify: the three classes at their thresholds, and the grid's
// days, over summaries as the cache holds them.
func TestClassify(t *testing.T) {
	var flood []fleet.Result
	for i := range fleet.FewSources + 1 {
		flood = append(flood, synIncident(fmt.Sprintf("h%d", i%3), 1+i%2, fmt.Sprintf("198.51.%d.%d", i, i)))
	}
	few := []fleet.Result{
		synIncident("imap1", 1, "203.0.113.7", "203.0.113.8"),
		synIncident("imap2", 3, "203.0.113.7", "2001:db8:1:2::9"),
		synIncident("imap1", 3, "203.0.113.7", "not an address\x1b"),
	}
	none := []fleet.Result{synIncident("web1", 1), synIncident("web2", 2)}
	for name, c := range map[string]struct {
		results []fleet.Result
		class   string
		days    int
	}{
		"flood": {flood, fleet.ClassFlood, 2},
		"few":   {few, fleet.ClassRecurring, 2},
		"none":  {none, fleet.ClassNone, 2},
	} {
		rep := fleet.Build(name, c.results, fleet.Filter{})
		if rep.HalfOpen.Class != c.class || rep.HalfOpen.Incidents != len(c.results) || len(rep.Days) != c.days {
			t.Errorf("%s: class %q over %d incidents and %d days, want %q, %d, %d", name, rep.HalfOpen.Class, rep.HalfOpen.Incidents, len(rep.Days),
				c.class, len(c.results), c.days)
		}
	}
	rep := fleet.Build("few", few, fleet.Filter{})
	top := rep.HalfOpen.Sources[0]
	if top.Addr != "203.0.113.7" || top.Prefix != "203.0.113.0/24" || top.Incidents != 3 || len(top.Hosts) != 2 {
		t.Errorf("top source %+v, want 203.0.113.7 in 203.0.113.0/24, 3 incidents on 2 hosts", top)
	}
	if len(rep.HalfOpen.Sources) != 3 {
		t.Errorf("sources %+v: want 3, the unparsable one dropped", rep.HalfOpen.Sources)
	}
	for _, s := range rep.HalfOpen.Sources {
		if s.Addr == "2001:db8:1:2::9" && s.Prefix != "2001:db8:1::/48" {
			t.Errorf("IPv6 source's prefix %s, want 2001:db8:1::/48", s.Prefix)
		}
	}
	// --until is exclusive, --since inclusive.
	rep = fleet.Build("few", few, fleet.Filter{Since: time.Date(2026, 11, 3, 14, 0, 0, 0, time.UTC)})
	if rep.Bundles != 2 {
		t.Errorf("--since day 3 14:00: %d bundles, want 2", rep.Bundles)
	}
	rep = fleet.Build("few", few, fleet.Filter{Until: time.Date(2026, 11, 3, 14, 0, 0, 0, time.UTC)})
	if rep.Bundles != 1 || rep.Exit != analyze.ExitCritical {
		t.Errorf("--until day 3 14:00: %d bundles, exit %d; want 1, %d", rep.Bundles, rep.Exit, analyze.ExitCritical)
	}
}
