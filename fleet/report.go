package fleet

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"sort"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
)

// Schema is the fleet report's JSON schema name.
const Schema = "snapdiag.fleet/v1"

// The half-open classifications.
const (
	ClassRecurring = "recurring-broken-clients"
	ClassFlood     = "distributed-flood"
	ClassNone      = "no-half-open-clients"
)

// FewSources is the most distinct half-open sources, across all SYN-queue
// incidents, that are still "a few broken clients": beyond it, the sources
// are a distributed flood.
const FewSources = 10

// Filter selects the bundles a report covers.
type Filter struct {
	Since, Until time.Time // zero: unbounded; Until is exclusive
	HostGlob     string    // path.Match pattern, "" for all
	MinSeverity  analyze.Severity
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
	Incidents int      `json:"incidents"`
	Class     string   `json:"class"`
	Evidence  []string `json:"evidence"`
	Sources   []Client `json:"sources"`
}

// Client is one half-open client source across bundles.
type Client struct {
	Addr      string   `json:"addr"`
	Prefix    string   `json:"prefix"`
	Incidents int      `json:"incidents"`
	Hosts     []string `json:"hosts"`
}

// Load is one bundle's accepted-connection rate, to set its incidents
// against the host's load.
type Load struct {
	Host       string   `json:"host"`
	Key        string   `json:"key"`
	CapturedAt string   `json:"captured_at"`
	Worst      string   `json:"worst"`
	AcceptRate *float64 `json:"accept_rate"`
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
		Healthy: []string{}, Recurring: []Recurring{}, Load: []Load{}, HalfOpen: HalfOpen{Evidence: []string{}, Sources: []Client{}}}
	type acc struct {
		row  HostRow
		days map[string]*DayCell
	}
	hosts := map[string]*acc{}
	recur := map[string]*Recurring{}
	recurHosts := map[string]map[string]bool{}
	srcInc := map[string]int{}
	srcHosts := map[string]map[string]bool{}
	days := map[string]bool{}
	worst, any := analyze.Info, false
	for _, r := range results {
		host := r.Host()
		if f.HostGlob != "" {
			if ok, _ := path.Match(f.HostGlob, host); !ok {
				continue
			}
		}
		if r.Err != nil {
			rep.Failed = append(rep.Failed, Failure{Key: r.Object.Key, Error: r.Err.Error()})
			continue
		}
		s := r.Summary
		if !f.Since.IsZero() && s.CapturedAt.Before(f.Since) || !f.Until.IsZero() && !s.CapturedAt.Before(f.Until) {
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
		if s.SynQueue {
			rep.HalfOpen.Incidents++
			for _, addr := range dedup(s.HalfOpen) {
				// A socket table's address is untrusted text: only a
				// parsed address is shown.
				if addr = canonical(addr); addr == "" {
					continue
				}
				srcInc[addr]++
				if srcHosts[addr] == nil {
					srcHosts[addr] = map[string]bool{}
				}
				srcHosts[addr][host] = true
			}
		}
		l := Load{Host: host, Key: r.Object.Key, Worst: sevName(s), AcceptRate: s.AcceptRate}
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
	for addr, n := range srcInc {
		rep.HalfOpen.Sources = append(rep.HalfOpen.Sources, Client{Addr: addr, Prefix: Prefix(addr), Incidents: n, Hosts: keys(srcHosts[addr])})
	}
	sort.Slice(rep.HalfOpen.Sources, func(i, j int) bool {
		a, b := rep.HalfOpen.Sources[i], rep.HalfOpen.Sources[j]
		if a.Incidents != b.Incidents {
			return a.Incidents > b.Incidents
		}
		return a.Addr < b.Addr
	})
	rep.HalfOpen.classify()
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

// classify decides the class of the half-open sources: none in any
// incident means the application did not accept (the queue filled with
// clients that did complete); at most FewSources distinct sources are a
// few broken clients; more are a distributed flood.
func (h *HalfOpen) classify() {
	if h.Incidents == 0 {
		h.Class = ""
		return
	}
	once, prefixes := 0, map[string]bool{}
	hosts := map[string]bool{}
	for _, s := range h.Sources {
		if s.Incidents == 1 {
			once++
		}
		prefixes[s.Prefix] = true
		for _, x := range s.Hosts {
			hosts[x] = true
		}
	}
	n := len(h.Sources)
	h.Evidence = append(h.Evidence, fmt.Sprintf("%d SYN-queue incidents", h.Incidents),
		fmt.Sprintf("%d distinct half-open sources in %d prefixes (/24, /48), on %d hosts", n, len(prefixes), len(hosts)),
		fmt.Sprintf("%d sources seen in one incident only, %d in two or more", once, n-once))
	switch {
	case n == 0:
		h.Class = ClassNone
		h.Evidence = append(h.Evidence, "no incident names a half-open client: the handshakes completed and the application did not accept them")
	case n <= FewSources:
		h.Class = ClassRecurring
		h.Evidence = append(h.Evidence, fmt.Sprintf("at most %d distinct sources: a few broken clients", FewSources))
	default:
		h.Class = ClassFlood
		h.Evidence = append(h.Evidence, fmt.Sprintf("more than %d distinct sources: a distributed flood", FewSources))
	}
}

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
