package fleet

import (
	"slices"
	"sort"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
)

// synBundle is one SYN-queue bundle in range while a report is built.
type synBundle struct {
	host string
	at   time.Time // zero when the bundle records no capture time
	// sigs are its SYN-queue findings, as "ID LISTENER".
	sigs    []string
	sources []string // canonical, deduplicated
	judged  bool     // its packet sample judged the handshakes
}

// synSignatures is the SYN-queue findings of s at warning or worse, each
// as its id and listener; one empty signature when s is a SYN-queue
// incident without such a finding (a cache entry edited by hand).
func synSignatures(s Summary) []string {
	var out []string
	for _, f := range s.Findings {
		switch f.ID {
		case analyze.IDSynQueueOverflow, analyze.IDSyncookiesActive, analyze.IDHalfOpenClients:
			if f.Severity >= analyze.Warning {
				out = append(out, f.ID+" "+f.Listener)
			}
		}
	}
	if len(out) == 0 {
		out = []string{""}
	}
	return dedup(out)
}

// synIncident is one incident: the SYN-queue bundles of one host joined
// by IncidentGap, within IncidentMaxSpan of its first.
type synIncident struct {
	host        string
	first, last time.Time
	sigs        map[string]bool
	sources     map[string]int // address: bundles naming it
	judged      bool
}

func (in *synIncident) shares(sigs []string) bool {
	for _, s := range sigs {
		if in.sigs[s] {
			return true
		}
	}
	return false
}

// joinIncidents joins bs into incidents: a bundle joins an incident of its
// host whose latest bundle was captured at most IncidentGap before it and
// that shares a SYN-queue finding on a listener with it, unless the
// incident's first bundle is more than IncidentMaxSpan before it (then it
// starts another incident). A bundle without
// a capture time is an incident of its own.
func joinIncidents(bs []synBundle) []*synIncident {
	sort.SliceStable(bs, func(i, j int) bool {
		if bs[i].host != bs[j].host {
			return bs[i].host < bs[j].host
		}
		return bs[i].at.Before(bs[j].at)
	})
	var out, open []*synIncident // open: the current host's, still joinable
	for i, b := range bs {
		if i > 0 && bs[i-1].host != b.host {
			open = open[:0]
		}
		var in *synIncident
		if !b.at.IsZero() {
			// In time order, an incident too old for this bundle is too
			// old for every later one.
			open = slices.DeleteFunc(open, func(c *synIncident) bool {
				return b.at.Sub(c.last) > IncidentGap || b.at.Sub(c.first) > IncidentMaxSpan
			})
			for _, c := range open {
				if c.shares(b.sigs) {
					in = c
					break
				}
			}
		}
		if in == nil {
			in = &synIncident{host: b.host, first: b.at, sigs: map[string]bool{}, sources: map[string]int{}}
			out = append(out, in)
			if !b.at.IsZero() {
				open = append(open, in)
			}
		}
		in.last = b.at
		for _, s := range b.sigs {
			in.sigs[s] = true
		}
		for _, a := range b.sources {
			in.sources[a]++
		}
		in.judged = in.judged || b.judged
	}
	return out
}

// tally counts the incidents, their sources and their sources' prefixes
// into h (the class is decided on them by classify).
func (h *HalfOpen) tally(incidents []*synIncident) {
	type acc struct {
		incidents, bundles int
		perIncident        int // prefixes: most addresses in one incident
		hosts, addrs       map[string]bool
	}
	get := func(m map[string]*acc, k string) *acc {
		a := m[k]
		if a == nil {
			a = &acc{hosts: map[string]bool{}, addrs: map[string]bool{}}
			m[k] = a
		}
		return a
	}
	srcs, prefixes := map[string]*acc{}, map[string]*acc{}
	h.Incidents = len(incidents)
	for _, in := range incidents {
		switch {
		case len(in.sources) > 0:
			h.WithSources++
		case in.judged:
			h.NoneSeen++
		default:
			h.Unknown++
		}
		seen := map[string]int{} // prefix: its addresses in this incident
		for addr, n := range in.sources {
			a := get(srcs, addr)
			a.incidents++
			a.bundles += n
			a.hosts[in.host] = true
			p := get(prefixes, Prefix(addr))
			p.hosts[in.host] = true
			p.addrs[addr] = true
			if seen[Prefix(addr)] == 0 {
				p.incidents++
			}
			seen[Prefix(addr)]++
			p.perIncident = max(p.perIncident, seen[Prefix(addr)])
		}
	}
	for addr, a := range srcs {
		h.Sources = append(h.Sources, Client{Addr: addr, Prefix: Prefix(addr), Incidents: a.incidents, Bundles: a.bundles,
			Hosts: keys(a.hosts), Recurrent: a.incidents >= 2})
	}
	sort.Slice(h.Sources, func(i, j int) bool {
		a, b := h.Sources[i], h.Sources[j]
		if a.Incidents != b.Incidents {
			return a.Incidents > b.Incidents
		}
		return a.Addr < b.Addr
	})
	for p, a := range prefixes {
		h.ByPrefix = append(h.ByPrefix, PrefixRow{Prefix: p, Incidents: a.incidents, Hosts: keys(a.hosts), Sources: len(a.addrs),
			PerIncident: a.perIncident, Recurrent: a.incidents >= 2})
	}
	sort.Slice(h.ByPrefix, func(i, j int) bool {
		a, b := h.ByPrefix[i], h.ByPrefix[j]
		if a.Incidents != b.Incidents {
			return a.Incidents > b.Incidents
		}
		return a.Prefix < b.Prefix
	})
}
