package fleet_test

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/fleet"
)

// synIncident is a SYN-queue incident on host at day whose packet sample
// judged its handshakes and named these half-open sources, as a bundle's
// summary records it.
func synIncident(host string, day int, sources ...string) fleet.Result {
	return synIncidentSampled(host, day, fleet.PacketsJudged, sources...)
}

// synIncidentSampled is synIncident with what its packet sample could tell.
func synIncidentSampled(host string, day int, packets fleet.PacketEvidence, sources ...string) fleet.Result {
	return fleet.Result{
		Object: fleet.Object{Key: fmt.Sprintf("prod/%s/b%d-%d-%v.tar.zst", host, day, len(sources), sources)},
		Summary: fleet.Summary{CapturedAt: time.Date(2026, 11, day, 14, 0, 0, 0, time.UTC), Worst: analyze.Critical, HasFindings: true,
			Findings: []fleet.FindingRef{{ID: analyze.IDSynQueueOverflow, Severity: analyze.Critical}}, SynQueue: true, HalfOpen: sources,
			Packets: packets},
	}
}

// incidents is n incidents, the i-th on host h(i%hosts) on day 1+i%2,
// each naming the sources src(i) returns.
func incidents(n, hosts int, src func(i int) []string) []fleet.Result {
	var out []fleet.Result
	for i := range n {
		out = append(out, synIncident(fmt.Sprintf("h%d", i%hosts), 1+i%2, src(i)...))
	}
	return out
}

// classNumbers is the typed evidence a class is decided on.
type classNumbers struct {
	Class                          string
	WithSources, NoneSeen, Unknown int
	Sightings, Recurrent, Once     int
	RecurrentShare, TopShare       float64
}

func numbers(h fleet.HalfOpen) classNumbers {
	return classNumbers{h.Class, h.WithSources, h.NoneSeen, h.Unknown, h.Sightings, h.Recurrent, h.Once, h.RecurrentShare, h.TopShare}
}

// TestClassify: the classes decided on recurrence, at and around their
// thresholds, with the numbers they are decided on, over summaries as the
// cache holds them.
func TestClassify(t *testing.T) {
	few := []fleet.Result{
		synIncident("imap1", 1, "203.0.113.7", "203.0.113.8"),
		synIncident("imap2", 3, "203.0.113.7", "2001:db8:1:2::9"),
		synIncident("imap1", 3, "203.0.113.7", "not an address\x1b"),
	}
	for name, c := range map[string]struct {
		results []fleet.Result
		want    classNumbers
	}{
		// Eleven sources, each in one incident.
		"flood": {incidents(fleet.FewSources+1, 3, func(i int) []string { return []string{fmt.Sprintf("198.51.%d.%d", i, i)} }),
			classNumbers{fleet.ClassFlood, 11, 0, 0, 11, 0, 11, 0, 0.91}},
		// One source in every incident on two hosts, two seen once.
		"few": {few, classNumbers{fleet.ClassRecurring, 3, 0, 0, 5, 1, 2, 0.6, 1}},
		// Two broken clients back in every one of 10 incidents, in a
		// crowd of 10 clients each seen once.
		"few in a crowd": {incidents(10, 4, func(i int) []string { return []string{"192.0.2.1", "192.0.2.2", fmt.Sprintf("198.51.100.%d", i)} }),
			classNumbers{fleet.ClassRecurring, 10, 0, 0, 30, 2, 10, 0.67, 0.93}},
		// A flood of 30 single sources with one client that recurs.
		"flood with a recurring client": {incidents(30, 3, func(i int) []string {
			if i%10 == 0 {
				return []string{fmt.Sprintf("198.51.%d.1", i), "192.0.2.1"}
			}
			return []string{fmt.Sprintf("198.51.%d.1", i)}
		}), classNumbers{fleet.ClassFlood, 30, 0, 0, 33, 1, 30, 0.09, 0.36}},
		// Three sources, each seen once: few, but nothing recurs.
		"few that never recur": {incidents(3, 3, func(i int) []string { return []string{fmt.Sprintf("203.0.113.%d", i)} }),
			classNumbers{fleet.ClassMixed, 3, 0, 0, 3, 0, 3, 0, 1}},
		// Twenty sources, every one back in a second incident: they
		// recur, but they are not a few.
		"many that recur": {incidents(20, 4, func(i int) []string {
			return []string{fmt.Sprintf("198.51.100.%d", i/2*2), fmt.Sprintf("198.51.100.%d", i/2*2+1)}
		}), classNumbers{fleet.ClassMixed, 20, 0, 0, 40, 20, 0, 1, 0.5}},
		"none": {[]fleet.Result{synIncident("web1", 1), synIncident("web2", 2)},
			classNumbers{fleet.ClassNone, 0, 2, 0, 0, 0, 0, 0, 0}},
		// Without a packet sample, or with one that could not judge, an
		// incident naming no source shows nothing.
		"no packet sample": {[]fleet.Result{synIncidentSampled("web1", 1, fleet.PacketsAbsent), synIncidentSampled("web2", 2, fleet.PacketsCannotTell)},
			classNumbers{fleet.ClassUnknown, 0, 0, 2, 0, 0, 0, 0, 0}},
		"one sample judged, one absent": {[]fleet.Result{synIncidentSampled("web1", 1, fleet.PacketsAbsent), synIncident("web2", 2)},
			classNumbers{fleet.ClassNone, 0, 1, 1, 0, 0, 0, 0, 0}},
	} {
		rep := fleet.Build(name, c.results, fleet.Filter{})
		if diff := cmp.Diff(c.want, numbers(rep.HalfOpen)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
		if rep.HalfOpen.Incidents != len(c.results) || len(rep.Days) != 2 {
			t.Errorf("%s: %d incidents over %d days, want %d over 2", name, rep.HalfOpen.Incidents, len(rep.Days), len(c.results))
		}
	}
	rep := fleet.Build("few", few, fleet.Filter{})
	top := rep.HalfOpen.Sources[0]
	if top.Addr != "203.0.113.7" || top.Prefix != "203.0.113.0/24" || top.Incidents != 3 || len(top.Hosts) != 2 || !top.Recurrent {
		t.Errorf("top source %+v, want 203.0.113.7 in 203.0.113.0/24, 3 incidents on 2 hosts, recurrent", top)
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

// FuzzBuild: whatever summaries a cache holds (it is a directory anyone
// with the user's rights may edit), Build does not panic, its class is one
// of the documented ones, its shares are shares, and no hour is outside
// the day.
func FuzzBuild(f *testing.F) {
	f.Add("203.0.113.7 203.0.113.8", uint8(3), int64(3600), 2.5, int64(20), uint8(2))
	f.Add("", uint8(0), int64(-1), -1.0, int64(-5), uint8(0))
	f.Add("::ffff:1.2.3.4 1.2.3.4 x", uint8(255), int64(1<<40), 1e300, int64(1<<62), uint8(1))
	classes := []string{"", fleet.ClassRecurring, fleet.ClassFlood, fleet.ClassMixed, fleet.ClassNone, fleet.ClassUnknown}
	f.Fuzz(func(t *testing.T, sources string, n uint8, unix int64, secs float64, accepted int64, packets uint8) {
		var results []fleet.Result
		ev := []fleet.PacketEvidence{fleet.PacketsAbsent, fleet.PacketsCannotTell, fleet.PacketsJudged, "junk"}[packets%4]
		for i := range int(n % 32) {
			r := synIncidentSampled(fmt.Sprintf("h%d", i%5), 1+i%3, ev, strings.Fields(sources)...)
			r.Summary.CapturedAt = time.Unix(unix%(1<<34), 0)
			r.Summary.Hours = []fleet.HourAccepts{{Hour: time.Unix(unix%(1<<34)+int64(i)*3600, 0), Seconds: secs, Accepted: accepted}}
			results = append(results, r)
		}
		rep := fleet.Build("fuzz", results, fleet.Filter{})
		if !slices.Contains(classes, rep.HalfOpen.Class) {
			t.Errorf("class %q", rep.HalfOpen.Class)
		}
		if h := rep.HalfOpen; h.RecurrentShare < 0 || h.RecurrentShare > 1 || h.TopShare < 0 || h.TopShare > 1 {
			t.Errorf("shares %v %v", h.RecurrentShare, h.TopShare)
		}
		for _, h := range rep.Hours {
			if h.Hour < 0 || h.Hour > 23 {
				t.Errorf("hour %d", h.Hour)
			}
		}
		if rep.Busiest.AtBusiest > rep.Busiest.Incidents {
			t.Errorf("busiest %+v", rep.Busiest)
		}
		if err := fleet.RenderJSON(io.Discard, rep); err != nil {
			t.Errorf("render: %v", err)
		}
	})
}
