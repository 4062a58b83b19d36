package fleet_test

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/fleet"
)

// TestIncidentSpanCapped: a broken client back every 9 minutes all day on
// one host is many incidents, not one chained by IncidentGap, so its
// sources recur.
func TestIncidentSpanCapped(t *testing.T) {
	var res []fleet.Result
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const captures = 160 // 24 hours
	for i := range captures {
		r := synIncident("imap1", 1, "192.0.2.1")
		r.Summary.CapturedAt = start.Add(time.Duration(i) * 9 * time.Minute)
		r.Object.Key += fmt.Sprint(i)
		res = append(res, r)
	}
	h := fleet.Build("chain", res, fleet.Filter{}).HalfOpen
	// Each incident holds the captures within IncidentMaxSpan of its
	// first: 0, 9, ..., 54 minutes, then the 63rd minute starts another.
	perIncident := int(fleet.IncidentMaxSpan/(9*time.Minute)) + 1
	want := (captures + perIncident - 1) / perIncident
	if h.Bundles != captures || h.Incidents != want {
		t.Fatalf("bundles %d incidents %d, want %d and %d", h.Bundles, h.Incidents, captures, want)
	}
	if h.Class != fleet.ClassRecurring || h.Recurrent != 1 {
		t.Errorf("one source in %d incidents: class %s, recurrent %d", h.Incidents, h.Class, h.Recurrent)
	}
}

// TestRotatingAddressesFewIncidents: one client with privacy addresses in
// one /48, a new address in each of 3 incidents, is a recurring client
// however few its addresses are.
func TestRotatingAddressesFewIncidents(t *testing.T) {
	res := []fleet.Result{
		synIncident("imap1", 1, "2001:db8:1:1::a"),
		synIncident("imap1", 3, "2001:db8:1:2::b"),
		synIncident("imap2", 5, "2001:db8:1:3::c"),
	}
	h := fleet.Build("v6", res, fleet.Filter{}).HalfOpen
	if h.Class != fleet.ClassRecurring || h.RecurrentPrefixes != 1 || h.Recurrent != 0 {
		t.Errorf("class %s, recurrent prefixes %d, recurrent sources %d; want %s, 1, 0",
			h.Class, h.RecurrentPrefixes, h.Recurrent, fleet.ClassRecurring)
	}
}

// TestFloodFromFewPrefixes: random addresses from a few /24s or one /48,
// many per incident, are a flood, though their prefixes recur.
func TestFloodFromFewPrefixes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for name, src := range map[string]func(int) []string{
		"three /24s, 25 per incident": func(int) []string {
			var s []string
			for range 25 {
				s = append(s, fmt.Sprintf("203.0.%d.%d", 110+rng.Intn(3), 1+rng.Intn(254)))
			}
			return s
		},
		"one /48, 100 per incident": func(int) []string {
			var s []string
			for range 100 {
				s = append(s, fmt.Sprintf("2001:db8:7:%x::%x", rng.Intn(65536), 1+rng.Intn(65535)))
			}
			return s
		},
	} {
		h := fleet.Build("flood", incidents(8, 2, src), fleet.Filter{}).HalfOpen
		if h.Class != fleet.ClassFlood || h.RecurrentPrefixes == 0 {
			t.Errorf("%s: class %s with %d sources, %d recurrent prefixes; want %s", name, h.Class, len(h.Sources), h.RecurrentPrefixes, fleet.ClassFlood)
		}
		for _, p := range h.ByPrefix {
			if p.Recurrent && p.PerIncident <= fleet.FewAddresses {
				t.Errorf("%s: prefix %s shows at most %d addresses in an incident", name, p.Prefix, p.PerIncident)
			}
		}
	}
}
