package fleet

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
)

// Schema is the fleet report's JSON schema name.
const Schema = "snapdiag.fleet/v1"

// The half-open classifications (HalfOpen.classify says when each holds).
const (
	// ClassRecurring: a few sources, seen again and again across
	// incidents and hosts, account for most sightings.
	ClassRecurring = "recurring-broken-clients"
	// ClassFlood: many sources, nearly every one seen in one incident.
	ClassFlood = "distributed-flood"
	// ClassMixed: sources were seen, but neither pattern holds (one
	// incident cannot show recurrence; many recurrent sources are not "a
	// few"): the evidence numbers say what was seen.
	ClassMixed = "mixed"
	// ClassOneIncident: sources were seen, but in one incident only: one
	// incident can show neither that sources recur nor that each is seen
	// once.
	ClassOneIncident = "one-incident-cannot-tell"
	// ClassNone: packet samples judged the handshakes of the incidents and
	// named no half-open client: the queue filled with clients that did
	// complete (the application did not accept).
	ClassNone = "no-half-open-clients"
	// ClassUnknown: no incident names a source and none had a packet
	// sample that could judge its handshakes: nothing can be concluded.
	ClassUnknown = "unknown-no-packet-sample"
)

// Thresholds of the half-open classification. A sighting is one source
// named in one incident; a source is recurrent when it is sighted in two
// incidents or more (on one host or several). A prefix is recurrent, and
// sighted, the same way.
const (
	// FewSources is the most recurrent sources that are still "a few
	// broken clients".
	FewSources = 10
	// RecurringShare is the least share of sightings that recurrent
	// sources must account for to be the incidents' cause.
	RecurringShare = 0.5
	// FloodOnceShare is the least share of sightings by sources seen once
	// for more than FewSources sources to be a distributed flood.
	FloodOnceShare = 0.8
	// IncidentGap joins captures into incidents: the SYN-queue bundles of
	// one host, each captured within IncidentGap of the one before, with
	// a SYN-queue finding (syn-queue-overflow, syncookies-active,
	// half-open-clients) on a listener in common, are one incident. A
	// sustained flood captured twice (watch's cooldown is minutes) is
	// then one incident, and its sources are not recurrent; the same
	// sources on another host, or on one host after a quiet spell longer
	// than IncidentGap, are another incident.
	IncidentGap = 10 * time.Minute
	// IncidentMaxSpan caps an incident: a bundle captured more than
	// IncidentMaxSpan after an incident's first bundle starts a new
	// incident, however close it is to the one before. Without a cap, a
	// client that breaks every few minutes all day would chain into one
	// incident and never recur.
	IncidentMaxSpan = time.Hour
	// FewAddresses is the most distinct addresses a prefix may show in
	// one incident to count as a recurring client changing its address
	// (a privacy address or two, a small NAT pool); a prefix showing more
	// in an incident is flood-like, random addresses from one network.
	FewAddresses = 4
)

// Filter selects the bundles a report covers.
type Filter struct {
	Since, Until time.Time // zero: unbounded; Until is exclusive
	HostGlob     string    // path.Match pattern, "" for all
	MinSeverity  analyze.Severity
	// Zone is the zone of the hour-of-day table that RenderText and
	// RenderMarkdown print (nil: UTC); the JSON's hours are UTC always.
	Zone *time.Location
}

// CheckHostGlob returns an error when pattern is not a valid --host glob
// (path.Match syntax): a bad pattern would match nothing, silently.
func CheckHostGlob(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("--host %q: %w", pattern, err)
	}
	return nil
}

// Report is the fleet report (snapdiag.fleet/v1).
type Report struct {
	Schema    string      `json:"schema"`
	Source    string      `json:"source"`
	Bundles   int         `json:"bundles"`
	Failed    []Failure   `json:"failed"`
	Days      []string    `json:"days"`
	Hosts     []HostRow   `json:"hosts"`
	Healthy   []string    `json:"healthy_hosts"`
	Recurring []Recurring `json:"recurring"`
	HalfOpen  HalfOpen    `json:"half_open"`
	Load      []Load      `json:"load"`
	// Hours is the fleet's load and incidents by UTC hour of day, the
	// hours with neither left out; Busiest sets the incidents against the
	// busiest of them.
	Hours   []HourLoad `json:"hours"`
	Busiest Busiest    `json:"busiest"`
	// Zone, ZoneHours and ZoneBusiest are Hours and Busiest in
	// Filter.Zone, for the text and markdown tables; Zone is "" when it is
	// UTC.
	Zone        string     `json:"-"`
	ZoneHours   []HourLoad `json:"-"`
	ZoneBusiest Busiest    `json:"-"`
	// Worst is the worst finding in range, "" when none.
	Worst string `json:"worst,omitempty"`
	// Exit is analyze's exit code for the worst finding in range (1 when a
	// bundle could not be read).
	Exit int `json:"-"`
}

// Failure is a bundle that could not be read.
type Failure struct {
	Key   string `json:"key"`
	Error string `json:"error"`
	// Kind is FailChecksum, FailCorrupt or FailRead.
	Kind string `json:"kind"`
}

// The kinds of failure.
const (
	// FailChecksum: the bytes do not match the checksum the store claims
	// (ChecksumError).
	FailChecksum = "checksum-mismatch"
	// FailCorrupt: the bundle's archive is damaged (bundle.ErrCorrupt).
	FailCorrupt = "corrupt"
	// FailRead: the object could not be read, or the bundle analyzed.
	FailRead = "read"
)

func failKind(err error) string {
	var ce *ChecksumError
	switch {
	case errors.As(err, &ce):
		return FailChecksum
	case errors.Is(err, bundle.ErrCorrupt):
		return FailCorrupt
	default:
		return FailRead
	}
}

// HostRow is one host's incidents over the days of the report.
type HostRow struct {
	Host      string `json:"host"`
	Bundles   int    `json:"bundles"`
	Incidents int    `json:"incidents"`
	// Days holds a cell for every day the host has a bundle.
	Days []DayCell `json:"days"`
}

// DayCell is one host's day: its worst finding ("none" without one) and
// how many of its bundles that day were incidents (warning or worse).
type DayCell struct {
	Day       string `json:"day"`
	Worst     string `json:"worst"`
	Bundles   int    `json:"bundles"`
	Incidents int    `json:"incidents"`
}

// Recurring is a finding seen in more than one bundle.
type Recurring struct {
	ID      string   `json:"id"`
	Worst   string   `json:"worst"`
	Bundles int      `json:"bundles"`
	Hosts   []string `json:"hosts"`
}

// HalfOpen is the fleet's view of the half-open clients of its SYN-queue
// incidents.
type HalfOpen struct {
	// Incidents is the SYN-queue incidents: bundles joined when they are
	// captures of one (IncidentGap).
	Incidents int      `json:"incidents"`
	Class     string   `json:"class"`
	Evidence  []string `json:"evidence"`
	Sources   []Client `json:"sources"`

	// The numbers the class is decided on. WithSources incidents name a
	// source; of the others, NoneSeen had a packet sample that judged the
	// handshakes and Unknown had none (or one that could not judge).
	WithSources int `json:"incidents_with_sources"`
	NoneSeen    int `json:"incidents_none_seen"`
	Unknown     int `json:"incidents_unknown"`
	// Sightings counts sources named per incident; Recurrent sources are
	// sighted in two incidents or more, Once sources in one.
	Sightings int `json:"sightings"`
	Recurrent int `json:"recurrent_sources"`
	Once      int `json:"once_sources"`
	// RecurrentShare is the share of sightings by recurrent sources;
	// TopShare the share by the FewSources most sighted ones (how
	// concentrated the sources are).
	RecurrentShare float64 `json:"recurrent_share"`
	TopShare       float64 `json:"top_share"`
	// Prefixes and Hosts count the sources' /24 or /48 and their hosts.
	Prefixes int `json:"prefixes"`
	Hosts    int `json:"hosts"`
	// Bundles is the SYN-queue bundles the incidents were captured in.
	Bundles int `json:"bundles"`
	// ByPrefix is the sources' prefixes, most incidents first;
	// RecurrentPrefixes of them are in two incidents or more, with
	// PrefixRecurrentShare of the prefix sightings (a prefix named in one
	// incident).
	ByPrefix             []PrefixRow `json:"by_prefix"`
	RecurrentPrefixes    int         `json:"recurrent_prefixes"`
	PrefixRecurrentShare float64     `json:"prefix_recurrent_share"`
}

// PrefixRow is one /24 (IPv4) or /48 (IPv6) of half-open sources across
// incidents: a client that changes its address within its network (IPv6
// privacy addresses, a NAT pool) recurs here when no one address does.
type PrefixRow struct {
	Prefix    string   `json:"prefix"`
	Incidents int      `json:"incidents"`
	Hosts     []string `json:"hosts"`
	// Sources is how many distinct addresses of the prefix were seen.
	Sources int `json:"sources"`
	// PerIncident is the most distinct addresses of the prefix seen in
	// one incident.
	PerIncident int  `json:"per_incident"`
	Recurrent   bool `json:"recurrent"`
}

// Client is one half-open client source across bundles.
type Client struct {
	Addr      string   `json:"addr"`
	Prefix    string   `json:"prefix"`
	Incidents int      `json:"incidents"`
	Hosts     []string `json:"hosts"`
	// Bundles is the SYN-queue bundles naming it (several captures of one
	// incident are one incident).
	Bundles int `json:"bundles"`
	// Recurrent is true when the source is sighted in two incidents or
	// more.
	Recurrent bool `json:"recurrent"`
}

// Load is one bundle's accepted-connection rate, to set its incidents
// against the host's load.
type Load struct {
	Host       string   `json:"host"`
	Key        string   `json:"key"`
	CapturedAt string   `json:"captured_at"`
	Worst      string   `json:"worst"`
	AcceptRate *float64 `json:"accept_rate"`
	// HistorySamples is how many samples the watchdog took before the
	// capture; HistoryAcceptRate the accepted rate over them.
	HistorySamples    int      `json:"history_samples"`
	HistoryAcceptRate *float64 `json:"history_accept_rate"`
}

// HourLoad is one UTC hour of day across the fleet and its days: the
// accepted connections per second every bundle's samples (watch history
// included) saw in that hour, and the bundles captured in it.
type HourLoad struct {
	Hour int `json:"hour"`
	// AcceptRate is the accepted connections over the seconds sampled in
	// that hour, per second, averaged over the hosts sampled (nil when no
	// sample fell in it); Seconds is the time sampled.
	AcceptRate *float64 `json:"accept_rate"`
	Seconds    float64  `json:"seconds"`
	Bundles    int      `json:"bundles"`
	Incidents  int      `json:"incidents"`
	// Busiest marks the hours of Busiest.Hours.
	Busiest bool `json:"busiest"`
}

// Busiest sets the incidents against the fleet's busiest hours: the
// quarter of the sampled hours of day with the highest accepted rate (at
// least one).
type Busiest struct {
	// Hours are hours of day in Zone.
	Hours []int `json:"hours"`
	// Zone is the zone of Hours: "UTC" in the JSON report.
	Zone string `json:"zone"`
	// Sampled is how many hours of day had samples: with one or two, the
	// busiest says little.
	Sampled int `json:"sampled_hours"`
	// Incidents is the incidents in range with a capture time;
	// AtBusiest those captured in a busiest hour.
	Incidents int `json:"incidents"`
	AtBusiest int `json:"at_busiest"`
}

// Host is the host of a result: its key's HOSTNAME segment, else the
// manifest's, made safe to print.
func (r Result) Host() string {
	if h := HostOf(r.Object.Key); h != "" {
		return h
	}
	return HostOf("x/" + r.Summary.Host + "/x")
}

func sevName(s Summary) string {
	if !s.HasFindings {
		return "none"
	}
	return s.Worst.String()
}

// Build brings the results in range together.
func Build(source string, results []Result, f Filter) *Report {
	rep := &Report{Schema: Schema, Source: source, Failed: []Failure{}, Days: []string{}, Hosts: []HostRow{},
		Healthy: []string{}, Recurring: []Recurring{}, Load: []Load{}, HalfOpen: HalfOpen{Evidence: []string{}, Sources: []Client{}},
		Hours: []HourLoad{}, Busiest: Busiest{Hours: []int{}, Zone: "UTC"}}
	rep.HalfOpen.ByPrefix = []PrefixRow{}
	var hours, zoneHours hourProfile
	zone := f.Zone
	if zone == nil {
		zone = time.UTC
	}
	type acc struct {
		row  HostRow
		days map[string]*DayCell
	}
	hosts := map[string]*acc{}
	recur := map[string]*Recurring{}
	recurHosts := map[string]map[string]bool{}
	var syn []synBundle
	days := map[string]bool{}
	worst, any := analyze.Info, false
	for _, r := range results {
		host := r.Host()
		if f.HostGlob != "" {
			// A bad pattern matches nothing; the command refuses it first
			// (CheckHostGlob).
			if ok, _ := path.Match(f.HostGlob, host); !ok {
				continue
			}
		}
		if r.Err != nil {
			// A bundle that could not be read has no capture time but the
			// one its name carries; one whose name carries none may be in
			// range, and is counted.
			if at, ok := NameTime(r.Object.Key); ok && !f.contains(at) {
				continue
			}
			rep.Failed = append(rep.Failed, Failure{Key: r.Object.Key, Error: r.Err.Error(), Kind: failKind(r.Err)})
			continue
		}
		s := r.Summary
		if !f.contains(s.CapturedAt) {
			continue
		}
		rep.Bundles++
		if s.HasFindings {
			worst, any = max(worst, s.Worst), true
		}
		day := "unknown"
		if !s.CapturedAt.IsZero() {
			day = s.CapturedAt.Format(time.DateOnly)
		}
		days[day] = true
		a := hosts[host]
		if a == nil {
			a = &acc{row: HostRow{Host: host}, days: map[string]*DayCell{}}
			hosts[host] = a
		}
		incident := s.HasFindings && s.Worst >= analyze.Warning
		a.row.Bundles++
		c := a.days[day]
		if c == nil {
			c = &DayCell{Day: day, Worst: "none"}
			a.days[day] = c
		}
		c.Bundles++
		if s.HasFindings && (c.Worst == "none" || s.Worst > mustSev(c.Worst)) {
			c.Worst = s.Worst.String()
		}
		if incident {
			a.row.Incidents++
			c.Incidents++
		}
		seen := map[string]bool{}
		for _, fr := range s.Findings {
			if fr.Severity < f.MinSeverity || seen[fr.ID] {
				continue
			}
			seen[fr.ID] = true
			rc := recur[fr.ID]
			if rc == nil {
				rc = &Recurring{ID: fr.ID, Worst: fr.Severity.String()}
				recur[fr.ID], recurHosts[fr.ID] = rc, map[string]bool{}
			}
			rc.Bundles++
			if fr.Severity > mustSev(rc.Worst) {
				rc.Worst = fr.Severity.String()
			}
			recurHosts[fr.ID][host] = true
		}
		hours.add(s, incident, time.UTC)
		if zone != time.UTC { // only another zone's profile is reported
			zoneHours.add(s, incident, zone)
		}
		if s.SynQueue {
			rep.HalfOpen.Bundles++
			syn = append(syn, synBundle{host: host, at: s.CapturedAt, sigs: synSignatures(s),
				sources: dedup(canonicalAll(s.HalfOpen)), judged: s.Packets == PacketsJudged})
		}
		l := Load{Host: host, Key: r.Object.Key, Worst: sevName(s), AcceptRate: s.AcceptRate,
			HistorySamples: s.HistorySamples, HistoryAcceptRate: s.HistoryAcceptRate}
		if !s.CapturedAt.IsZero() {
			l.CapturedAt = s.CapturedAt.Format(time.RFC3339)
		}
		rep.Load = append(rep.Load, l)
	}
	for d := range days {
		rep.Days = append(rep.Days, d)
	}
	sort.Strings(rep.Days)
	for _, a := range hosts {
		for _, c := range a.days {
			a.row.Days = append(a.row.Days, *c)
		}
		sort.Slice(a.row.Days, func(i, j int) bool { return a.row.Days[i].Day < a.row.Days[j].Day })
		rep.Hosts = append(rep.Hosts, a.row)
		if a.row.Incidents == 0 {
			rep.Healthy = append(rep.Healthy, a.row.Host)
		}
	}
	sort.Slice(rep.Hosts, func(i, j int) bool { return rep.Hosts[i].Host < rep.Hosts[j].Host })
	sort.Strings(rep.Healthy)
	for id, rc := range recur {
		if rc.Bundles < 2 {
			continue
		}
		rc.Hosts = keys(recurHosts[id])
		rep.Recurring = append(rep.Recurring, *rc)
	}
	sort.Slice(rep.Recurring, func(i, j int) bool {
		a, b := rep.Recurring[i], rep.Recurring[j]
		if a.Bundles != b.Bundles {
			return a.Bundles > b.Bundles
		}
		return a.ID < b.ID
	})
	rep.HalfOpen.tally(joinIncidents(syn))
	rep.HalfOpen.classify()
	rep.Hours, rep.Busiest = hours.profile("UTC")
	if zone != time.UTC {
		rep.Zone = zone.String()
		rep.ZoneHours, rep.ZoneBusiest = zoneHours.profile(rep.Zone)
	}
	sort.SliceStable(rep.Load, func(i, j int) bool { return rep.Load[i].CapturedAt < rep.Load[j].CapturedAt })
	switch {
	case len(rep.Failed) > 0:
		rep.Exit = 1
	case any && worst == analyze.Critical:
		rep.Exit = analyze.ExitCritical
	case any && worst == analyze.Warning:
		rep.Exit = analyze.ExitWarning
	}
	if any {
		rep.Worst = worst.String()
	}
	return rep
}

// classify decides the class of the half-open sources on recurrence:
// sources named by one incident only show nothing of it (one incident);
// recurrent sources (sighted in two incidents or more), at most FewSources
// of them, that account for RecurringShare of the sightings or more are a
// few recurring broken clients; more than FewSources sources, FloodOnceShare
// of the sightings or more by sources seen once, are a distributed flood,
// unless their prefixes recur as a few recurring clients would (at most
// FewSources recurrent prefixes with RecurringShare of the prefix
// sightings: clients changing addresses within their networks); sources
// that fit neither are mixed. Without any source, the class is
// no-half-open-clients only when a packet sample judged an incident's
// handshakes, else unknown.
func (h *HalfOpen) classify() {
	if h.Incidents == 0 {
		h.Class = ""
		return
	}
	prefixes, hosts := map[string]bool{}, map[string]bool{}
	onceSightings, recurrentSightings := 0, 0
	counts := make([]int, 0, len(h.Sources))
	for _, s := range h.Sources {
		h.Sightings += s.Incidents
		counts = append(counts, s.Incidents)
		if s.Recurrent {
			h.Recurrent++
			recurrentSightings += s.Incidents
		} else {
			h.Once++
			onceSightings += s.Incidents
		}
		prefixes[s.Prefix] = true
		for _, x := range s.Hosts {
			hosts[x] = true
		}
	}
	h.Prefixes, h.Hosts = len(prefixes), len(hosts)
	prefixSightings, recurrentPrefixSightings := 0, 0
	clientPrefixes, clientPrefixSightings := 0, 0 // recurrent, few addresses in each incident
	for _, p := range h.ByPrefix {
		prefixSightings += p.Incidents
		if p.Recurrent {
			h.RecurrentPrefixes++
			recurrentPrefixSightings += p.Incidents
			if p.PerIncident <= FewAddresses {
				clientPrefixes++
				clientPrefixSightings += p.Incidents
			}
		}
	}
	clientPrefixShare := 0.0
	if prefixSightings > 0 {
		h.PrefixRecurrentShare = round2(float64(recurrentPrefixSightings) / float64(prefixSightings))
		clientPrefixShare = round2(float64(clientPrefixSightings) / float64(prefixSightings))
	}
	slices.Sort(counts)
	slices.Reverse(counts)
	top := 0
	for _, n := range counts[:min(len(counts), FewSources)] {
		top += n
	}
	if h.Sightings > 0 {
		h.RecurrentShare = round2(float64(recurrentSightings) / float64(h.Sightings))
		h.TopShare = round2(float64(top) / float64(h.Sightings))
	}
	n := len(h.Sources)
	h.Evidence = append(h.Evidence,
		fmt.Sprintf("%d SYN-queue incidents: %d name half-open sources, %d had a packet sample that named none, %d could not tell (no packet sample, or one that could not judge)",
			h.Incidents, h.WithSources, h.NoneSeen, h.Unknown),
		fmt.Sprintf("%d distinct half-open sources in %d prefixes (/24, /48), on %d hosts", n, h.Prefixes, h.Hosts),
		fmt.Sprintf("%d sources seen in two incidents or more, with %.0f%% of the %d sightings; %d seen once", h.Recurrent, 100*h.RecurrentShare, h.Sightings, h.Once),
		fmt.Sprintf("%d prefixes seen in two incidents or more, with %.0f%% of the %d prefix sightings; %d of them show at most %d addresses in any one incident, with %.0f%%",
			h.RecurrentPrefixes, 100*h.PrefixRecurrentShare, prefixSightings, clientPrefixes, FewAddresses, 100*clientPrefixShare))
	// A prefix is a recurring client's only when it shows a few addresses
	// in each incident: random addresses from one network, many in each
	// incident, are a flood however often the network recurs.
	fewPrefixes := clientPrefixes > 0 && clientPrefixes <= FewSources && clientPrefixShare >= RecurringShare
	switch {
	case n == 0 && h.NoneSeen > 0:
		h.Class = ClassNone
		h.Evidence = append(h.Evidence, "no incident names a half-open client and packet samples judged the handshakes: they completed, and the application did not accept them")
	case n == 0:
		h.Class = ClassUnknown
		h.Evidence = append(h.Evidence, "no incident names a half-open client, and none had a packet sample that could judge its handshakes: nothing shows whether clients completed them")
	case h.WithSources < 2:
		h.Class = ClassOneIncident
		h.Evidence = append(h.Evidence, fmt.Sprintf("only one incident names half-open sources (%d of them): one incident shows neither sources that recur nor sources each seen once", n))
	case h.Recurrent > 0 && h.Recurrent <= FewSources && h.RecurrentShare >= RecurringShare:
		h.Class = ClassRecurring
		h.Evidence = append(h.Evidence, fmt.Sprintf("%d recurring sources (at most %d) account for %.0f%% of the sightings (at least %.0f%%): a few recurring broken clients",
			h.Recurrent, FewSources, 100*h.RecurrentShare, 100*RecurringShare))
	case 1-h.RecurrentShare >= FloodOnceShare && fewPrefixes:
		h.Class = ClassRecurring
		h.Evidence = append(h.Evidence, fmt.Sprintf("%d sources, nearly each seen once, but %d prefixes that recur with at most %d addresses in an incident (at most %d prefixes) account for %.0f%% of the prefix sightings (at least %.0f%%): a few recurring clients changing addresses within their networks (IPv6 privacy addresses, a NAT pool), not a distributed flood",
			n, clientPrefixes, FewAddresses, FewSources, 100*clientPrefixShare, 100*RecurringShare))
	case n > FewSources && 1-h.RecurrentShare >= FloodOnceShare:
		h.Class = ClassFlood
		h.Evidence = append(h.Evidence, fmt.Sprintf("%d sources, %.0f%% of the sightings by sources seen once (at least %.0f%%), the top %d only %.0f%%, and no few recurring prefixes: a distributed flood",
			n, 100*(1-h.RecurrentShare), 100*FloodOnceShare, FewSources, 100*h.TopShare))
	default:
		h.Class = ClassMixed
		h.Evidence = append(h.Evidence, "neither a few recurring sources nor many sources seen once: the numbers above are all that can be said")
	}
}

// hourAcc is one hour of day while a report is built.
type hourAcc struct {
	seconds   float64
	accepted  int64
	bundles   int
	incidents int
}

type hourProfile [24]hourAcc

// maxHourSeconds bounds the seconds one bundle may add to an hour.
const maxHourSeconds = 7 * 24 * 3600

func (hs *hourProfile) add(s Summary, incident bool, zone *time.Location) {
	for _, h := range s.Hours {
		// One bundle's hour cannot hold more than the span its samples
		// cover; a week, and 2^40 handshakes, bound any real one and keep
		// the sums finite.
		if h.Seconds > 0 && h.Seconds <= maxHourSeconds && h.Accepted >= 0 && h.Accepted <= 1<<40 {
			a := &hs[h.Hour.In(zone).Hour()]
			a.seconds += h.Seconds
			a.accepted += h.Accepted
		}
	}
	if !s.CapturedAt.IsZero() {
		a := &hs[s.CapturedAt.In(zone).Hour()]
		a.bundles++
		if incident {
			a.incidents++
		}
	}
}

// profile is the hours that have samples or bundles, and the busiest:
// the top quarter (at least one) of the sampled hours by accepted rate.
// zone names the zone the hours were added in.
func (hs *hourProfile) profile(zone string) ([]HourLoad, Busiest) {
	out := []HourLoad{}
	var sampled []int
	b := Busiest{Hours: []int{}, Zone: zone}
	for h, a := range hs {
		b.Incidents += a.incidents
		if a.seconds == 0 && a.bundles == 0 {
			continue
		}
		l := HourLoad{Hour: h, Seconds: round2(a.seconds), Bundles: a.bundles, Incidents: a.incidents}
		// A cache entry is a file anyone with the user's rights may edit:
		// a rate JSON cannot carry (an overflow to infinity) is no rate.
		if r := round2(float64(a.accepted) / a.seconds); a.seconds > 0 && !math.IsInf(r, 0) && !math.IsNaN(r) {
			l.AcceptRate = &r
			sampled = append(sampled, len(out))
		}
		out = append(out, l)
	}
	b.Sampled = len(sampled)
	sort.SliceStable(sampled, func(i, j int) bool { return *out[sampled[i]].AcceptRate > *out[sampled[j]].AcceptRate })
	for _, i := range sampled[:(len(sampled)+3)/4] {
		out[i].Busiest = true
		b.Hours = append(b.Hours, out[i].Hour)
		b.AtBusiest += out[i].Incidents
	}
	sort.Ints(b.Hours)
	return out, b
}

// contains is whether t is in f's time range; the zero time is in range
// only when the range is unbounded.
func (f Filter) contains(t time.Time) bool {
	return (f.Since.IsZero() || !t.Before(f.Since)) && (f.Until.IsZero() || t.Before(f.Until))
}

// nameTime matches the name bundle.FileName gives a bundle,
// snapdiag-HOST-yyyymmddThhmmssZ.tar.zst, with the -N suffix of a second
// bundle in the same second. Compiled on first use, not at every start of
// snapdiag.
var nameTime = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^snapdiag-.+-([0-9]{8}T[0-9]{6}Z)(?:-[0-9]{1,6})?\.tar\.zst$`)
})

// NameTime is the capture time the name of key's last segment carries;
// ok is false when it is not a name bundle.FileName gives.
func NameTime(key string) (time.Time, bool) {
	m := nameTime().FindStringSubmatch(path.Base(key))
	if m == nil {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T150405Z", m[1])
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// Prefix is addr's /24 (IPv4) or /48 (IPv6), "" when addr is no address.
func Prefix(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(addr); err2 == nil {
			a = ap.Addr()
		} else {
			return ""
		}
	}
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// canonicalAll is the parsable addresses of addrs, canonical.
func canonicalAll(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		// A socket table's address is untrusted text: only a parsed
		// address is shown.
		if a = canonical(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// canonical is addr (an address, or address and port) as netip prints the
// address, "" when it is neither.
func canonical(addr string) string {
	if a, err := netip.ParseAddr(addr); err == nil {
		return a.Unmap().String()
	}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap().String()
	}
	return ""
}

func mustSev(s string) analyze.Severity {
	v, _ := analyze.ParseSeverity(s)
	return v
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func dedup(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}
