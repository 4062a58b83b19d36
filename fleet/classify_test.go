package fleet_test

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
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

// incidents is n incidents, the i-th on host h(i%hosts) on day 1+i%2 at
// 14:00 plus i quarters of an hour (so no two of one host are one
// sustained incident), each naming the sources src(i) returns.
func incidents(n, hosts int, src func(i int) []string) []fleet.Result {
	var out []fleet.Result
	for i := range n {
		r := synIncident(fmt.Sprintf("h%d", i%hosts), 1+i%2, src(i)...)
		r.Summary.CapturedAt = r.Summary.CapturedAt.Add(time.Duration(i) * 15 * time.Minute)
		out = append(out, r)
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
		// Three sources, each seen once, each in its own /24: few, but
		// nothing recurs (not even a prefix).
		"few that never recur": {incidents(3, 3, func(i int) []string { return []string{fmt.Sprintf("203.0.%d.1", 111+i)} }),
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
	classes := []string{"", fleet.ClassRecurring, fleet.ClassFlood, fleet.ClassMixed, fleet.ClassOneIncident, fleet.ClassNone, fleet.ClassUnknown}
	f.Fuzz(func(t *testing.T, sources string, n uint8, unix int64, secs float64, accepted int64, packets uint8) {
		var results []fleet.Result
		ev := []fleet.PacketEvidence{fleet.PacketsAbsent, fleet.PacketsCannotTell, fleet.PacketsJudged, "junk"}[packets%4]
		for i := range int(n % 32) {
			r := synIncidentSampled(fmt.Sprintf("h%d", i%5), 1+i%3, ev, strings.Fields(sources)...)
			// Spaced 0 to 20 minutes apart: some are captures of one
			// incident, some not.
			r.Summary.CapturedAt = time.Unix(unix%(1<<34)+int64(i)*(unix%1201), 0)
			r.Summary.Hours = []fleet.HourAccepts{{Hour: time.Unix(unix%(1<<34)+int64(i)*3600, 0), Seconds: secs, Accepted: accepted}}
			results = append(results, r)
		}
		rep := fleet.Build("fuzz", results, fleet.Filter{})
		if h := rep.HalfOpen; h.Incidents > h.Bundles || h.WithSources+h.NoneSeen+h.Unknown != h.Incidents {
			t.Errorf("%d incidents of %d bundles, %d+%d+%d by what they show", h.Incidents, h.Bundles, h.WithSources, h.NoneSeen, h.Unknown)
		}
		for _, c := range rep.HalfOpen.Sources {
			if c.Incidents > c.Bundles || c.Incidents > rep.HalfOpen.Incidents {
				t.Errorf("source %+v in more incidents than bundles", c)
			}
		}
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

// TestOneIncidentCannotTell: however many sources one incident names, one
// incident shows neither recurrence nor sources each seen once: the class
// says so instead of calling it a flood.
func TestOneIncidentCannotTell(t *testing.T) {
	var srcs []string
	for i := range fleet.FewSources + 1 {
		srcs = append(srcs, fmt.Sprintf("198.51.100.%d", i+1))
	}
	for name, c := range map[string]struct {
		results []fleet.Result
		want    classNumbers
	}{
		"many sources": {[]fleet.Result{synIncident("imap1", 1, srcs...)}, classNumbers{fleet.ClassOneIncident, 1, 0, 0, 11, 0, 11, 0, 0.91}},
		"one source":   {[]fleet.Result{synIncident("imap1", 1, "198.51.100.1")}, classNumbers{fleet.ClassOneIncident, 1, 0, 0, 1, 0, 1, 0, 1}},
		// A second incident naming none does not make the first one's
		// sources recurrent or single.
		"one with sources, one without": {[]fleet.Result{synIncident("imap1", 1, srcs...), synIncident("imap2", 2)},
			classNumbers{fleet.ClassOneIncident, 1, 1, 0, 11, 0, 11, 0, 0.91}},
	} {
		if diff := cmp.Diff(c.want, numbers(fleet.Build(name, c.results, fleet.Filter{}).HalfOpen)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

// TestRotatingPrefixRecurs: one broken client behind a /48 that takes a
// new privacy address for every connection shows a new source in each of
// 12 incidents on 3 hosts; its prefix recurs in all of them, so it is a
// recurring client, not a distributed flood. The prefix rows say so.
func TestRotatingPrefixRecurs(t *testing.T) {
	res := incidents(12, 3, func(i int) []string { return []string{fmt.Sprintf("2001:db8:1:%x::%x", i, i+1)} })
	h := fleet.Build("v6", res, fleet.Filter{}).HalfOpen
	if diff := cmp.Diff(classNumbers{fleet.ClassRecurring, 12, 0, 0, 12, 0, 12, 0, 0.83}, numbers(h)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	want := []fleet.PrefixRow{{Prefix: "2001:db8:1::/48", Incidents: 12, Hosts: []string{"h0", "h1", "h2"}, Sources: 12, PerIncident: 1, Recurrent: true}}
	if diff := cmp.Diff(want, h.ByPrefix); diff != "" {
		t.Errorf("prefix rows (-want +got):\n%s", diff)
	}
	if h.Prefixes != 1 || h.RecurrentPrefixes != 1 || h.PrefixRecurrentShare != 1 {
		t.Errorf("%d prefixes, %d recurrent with %v of the sightings; want 1, 1, 1", h.Prefixes, h.RecurrentPrefixes, h.PrefixRecurrentShare)
	}
	// The same in IPv4: each incident from another address of one /24.
	res = incidents(12, 3, func(i int) []string { return []string{fmt.Sprintf("203.0.113.%d", i+1)} })
	if h := fleet.Build("v4", res, fleet.Filter{}).HalfOpen; h.Class != fleet.ClassRecurring || len(h.ByPrefix) != 1 || h.ByPrefix[0].Incidents != 12 {
		t.Errorf("12 incidents from one /24: class %s, prefixes %+v; want %s, 203.0.113.0/24 in 12", h.Class, h.ByPrefix, fleet.ClassRecurring)
	}
}

// TestSustainedFloodIsOneIncident: two captures of one sustained flood on
// one host (the same finding on the same listener, minutes apart) are one
// incident, so its sources are not recurrent; the same host again hours
// later, or the same sources on another host, are a second incident.
func TestSustainedFloodIsOneIncident(t *testing.T) {
	at := func(r fleet.Result, minute int) fleet.Result {
		r.Summary.CapturedAt = time.Date(2026, 11, 1, 14, minute, 0, 0, time.UTC)
		r.Object.Key += fmt.Sprint(minute)
		return r
	}
	listener := func(r fleet.Result, l string) fleet.Result {
		r.Summary.Findings = []fleet.FindingRef{{ID: analyze.IDSynQueueOverflow, Severity: analyze.Critical, Listener: l}}
		return r
	}
	bad := []string{"192.0.2.1", "192.0.2.2"}
	for name, c := range map[string]struct {
		results             []fleet.Result
		bundles, incidents  int
		recurrent, sightins int
	}{
		// Captured at 14:00, 14:05 and 14:14: each within 10 minutes of the
		// one before, one incident.
		"sustained": {[]fleet.Result{at(synIncident("imap1", 1, bad...), 0), at(synIncident("imap1", 1, bad...), 5), at(synIncident("imap1", 1, bad...), 14)}, 3, 1, 0, 2},
		"separated": {[]fleet.Result{at(synIncident("imap1", 1, bad...), 0), at(synIncident("imap1", 1, bad...), 11)}, 2, 2, 2, 4},
		"two hosts": {[]fleet.Result{at(synIncident("imap1", 1, bad...), 0), at(synIncident("imap2", 1, bad...), 1)}, 2, 2, 2, 4},
		"two listeners": {[]fleet.Result{listener(at(synIncident("imap1", 1, bad...), 0), "0.0.0.0:143"),
			listener(at(synIncident("imap1", 1, bad...), 1), "0.0.0.0:993")}, 2, 2, 2, 4},
	} {
		h := fleet.Build(name, c.results, fleet.Filter{}).HalfOpen
		if h.Bundles != c.bundles || h.Incidents != c.incidents || h.Recurrent != c.recurrent || h.Sightings != c.sightins {
			t.Errorf("%s: %d bundles, %d incidents, %d recurrent sources, %d sightings; want %d, %d, %d, %d",
				name, h.Bundles, h.Incidents, h.Recurrent, h.Sightings, c.bundles, c.incidents, c.recurrent, c.sightins)
		}
		for _, s := range h.Sources {
			if s.Incidents != c.incidents || s.Bundles != c.bundles {
				t.Errorf("%s: source %+v, want in %d incidents, %d bundles", name, s, c.incidents, c.bundles)
			}
		}
	}
}

// TestFailureOutsideRange: a bundle that cannot be read is left out of a
// report whose range its name's capture time is outside of, and counted
// (exit 1) when its time is in range or cannot be known.
func TestFailureOutsideRange(t *testing.T) {
	fail := func(key string) fleet.Result {
		return fleet.Result{Object: fleet.Object{Key: key}, Err: fmt.Errorf("%s: %w", key, bundle.ErrCorrupt)}
	}
	since := fleet.Filter{Since: time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)}
	for key, want := range map[string]int{
		"prod/web1/snapdiag-web1-20250101T000000Z.tar.zst":         0,
		"prod/web1/snapdiag-web-1-20261120T000000Z.tar.zst":        0, // --until is exclusive
		"prod/web1/snapdiag-web1-20261110T000000Z.tar.zst":         1,
		"prod/web1/snapdiag-web-1.a-20261115T120000Z-2.tar.zst":    1,
		"prod/web1/copied.tar.zst":                                 1,
		"prod/web1/snapdiag-web1-20261399T000000Z.tar.zst":         1, // no date
		"prod/web1/snapdiag-web1-20250101T000000Z/other.tar.zst":   1,
		"prod/web1/snapdiag-web1-20250101T000000Z.tar.zst.tar.zst": 1,
	} {
		rep := fleet.Build("r", []fleet.Result{fail(key), synIncident("web2", 15)}, since)
		if len(rep.Failed) != want || rep.Bundles != 1 {
			t.Errorf("%s: %d failed, %d bundles; want %d, 1", key, len(rep.Failed), rep.Bundles, want)
		}
		if wantExit := []int{analyze.ExitCritical, 1}[want]; rep.Exit != wantExit {
			t.Errorf("%s: exit %d, want %d", key, rep.Exit, wantExit)
		}
	}
}

// TestHoursInZone: the JSON's hours of day are UTC whatever the zone; the
// zone's hours (for the text and markdown tables) are the same samples and
// captures at their local hour of day.
func TestHoursInZone(t *testing.T) {
	r := synIncident("imap1", 1)
	r.Summary.CapturedAt = time.Date(2026, 11, 1, 14, 10, 0, 0, time.UTC)
	r.Summary.Hours = []fleet.HourAccepts{
		{Hour: time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC), Seconds: 3600, Accepted: 360},
		{Hour: time.Date(2026, 11, 1, 14, 0, 0, 0, time.UTC), Seconds: 600, Accepted: 6000},
	}
	india := time.FixedZone("IST", 5*3600+1800)
	rep := fleet.Build("tz", []fleet.Result{r}, fleet.Filter{Zone: india})
	hours := func(hs []fleet.HourLoad) map[int]int {
		m := map[int]int{}
		for _, h := range hs {
			m[h.Hour] = h.Bundles
		}
		return m
	}
	if got, want := hours(rep.Hours), map[int]int{13: 0, 14: 1}; !maps.Equal(got, want) {
		t.Errorf("UTC hours %v (hour: bundles), want %v", got, want)
	}
	if !slices.Equal(rep.Busiest.Hours, []int{14}) || rep.Busiest.Zone != "UTC" || rep.Busiest.AtBusiest != 1 {
		t.Errorf("UTC busiest %+v, want hour 14 in UTC, its incident", rep.Busiest)
	}
	// 13:00 and 14:10 UTC are 18:30 and 19:40 IST.
	if got, want := hours(rep.ZoneHours), map[int]int{18: 0, 19: 1}; !maps.Equal(got, want) || rep.Zone != "IST" {
		t.Errorf("%s hours %v, want IST %v", rep.Zone, got, want)
	}
	if !slices.Equal(rep.ZoneBusiest.Hours, []int{19}) || rep.ZoneBusiest.Zone != "IST" || rep.ZoneBusiest.AtBusiest != 1 {
		t.Errorf("IST busiest %+v, want hour 19, its incident", rep.ZoneBusiest)
	}
	if utc := fleet.Build("tz", []fleet.Result{r}, fleet.Filter{}); utc.Zone != "" || utc.ZoneHours != nil {
		t.Errorf("without a zone: zone %q, zone hours %+v; want none", utc.Zone, utc.ZoneHours)
	}
}
