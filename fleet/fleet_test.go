package fleet_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/fleet"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/schema"
	"github.com/snapdiag/snapdiag/ship"
)

// The fleet of the tests: real lab captures (the repository's incident
// fixtures) under distinct hosts. web1 and web2 had the same IPv4 SYN
// flood from one half-open client and an accept queue that never drained;
// db1 the IPv6 flood; ok1 was only ever busy and healthy.
var fleetBundles = map[string][]string{
	"web1": {"synflood-cookies-off-v4", "accept-queue-never-accepts"},
	"web2": {"synflood-cookies-off-v4", "healthy-busy"},
	"db1":  {"synflood-cookies-on-v6"},
	"ok1":  {"healthy-busy"},
}

func fixture(name string) string {
	return filepath.Join("..", "fixtures", name, "bundle.tar.zst")
}

// pushFleet pushes fleetBundles to target through ship, as hosts' push
// and capture --upload would, and returns how many it pushed.
func pushFleet(t *testing.T, target string, o ship.S3Options) int {
	t.Helper()
	tg, err := ship.ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ship.Open(tg, o)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for host, names := range fleetBundles {
		for _, name := range names {
			// A copy: a failed push writes a pending sidecar beside it.
			src := filepath.Join(t.TempDir(), "snapdiag-"+host+"-"+name+fleet.BundleSuffix)
			data, err := os.ReadFile(fixture(name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			key, err := p.KeyFor(host, src)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Push(context.Background(), src, key); err != nil {
				t.Fatalf("push %s: %v", key, err)
			}
			n++
		}
	}
	return n
}

// TestFleetOverStores: the same fleet pushed to a real S3 server and to a
// file:// directory gives the same typed report over both; a second run
// analyzes nothing and, on S3, asks the store for no checksum.
func TestFleetOverStores(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("diag")
	s3o := ship.S3Options{Getenv: srv.Getenv()}
	dir := t.TempDir()
	sources := map[string]ship.S3Options{"s3://diag/prod": s3o, "file://" + dir: {}}
	for target, o := range sources {
		t.Run(target[:2], func(t *testing.T) {
			n := pushFleet(t, target, o)
			src, err := fleet.Open(target, o)
			if err != nil {
				t.Fatal(err)
			}
			cache := fleet.Cache{Dir: filepath.Join(t.TempDir(), "cache")}
			results, st, err := fleet.Run(context.Background(), src, fleet.Options{Cache: cache, Jobs: 2})
			if err != nil {
				t.Fatal(err)
			}
			// Two hosts hold the same bundle: it may be analyzed once and
			// its twin read from the cache, depending on which comes first.
			if st.Listed != n || st.Analyzed+st.Cached != n || st.Analyzed < 4 || st.Failed != 0 {
				t.Fatalf("cold run: %+v, want %d listed, the 4 distinct bundles at least analyzed", st, n)
			}
			rep := fleet.Build(src.String(), results, fleet.Filter{})
			checkReport(t, rep, n)

			_, warm, err := fleet.Run(context.Background(), src, fleet.Options{Cache: cache})
			if err != nil {
				t.Fatal(err)
			}
			if warm.Analyzed != 0 || warm.Cached != n || warm.Headed != 0 {
				t.Errorf("warm run: %+v, want all %d from the cache and no checksum asked", warm, n)
			}
		})
	}
}

func checkReport(t *testing.T, rep *fleet.Report, n int) {
	t.Helper()
	if rep.Bundles != n || len(rep.Failed) != 0 {
		t.Fatalf("report covers %d bundles (%v failed), want %d", rep.Bundles, rep.Failed, n)
	}
	var hosts []string
	incidents := map[string]int{}
	for _, h := range rep.Hosts {
		hosts = append(hosts, h.Host)
		incidents[h.Host] = h.Incidents
		for _, c := range h.Days {
			if !slices.Contains(rep.Days, c.Day) {
				t.Errorf("%s: day %s not among the report's days %v", h.Host, c.Day, rep.Days)
			}
		}
	}
	if !slices.Equal(hosts, []string{"db1", "ok1", "web1", "web2"}) {
		t.Errorf("hosts %v", hosts)
	}
	if incidents["web1"] != 2 || incidents["web2"] != 1 || incidents["db1"] != 1 || incidents["ok1"] != 0 {
		t.Errorf("incidents per host %v, want web1 2, web2 1, db1 1, ok1 0", incidents)
	}
	if !slices.Equal(rep.Healthy, []string{"ok1"}) {
		t.Errorf("healthy hosts %v, want [ok1]", rep.Healthy)
	}
	rec := map[string]fleet.Recurring{}
	for _, r := range rep.Recurring {
		rec[r.ID] = r
	}
	if r := rec[analyze.IDHalfOpenClients]; r.Bundles != 3 || !slices.Equal(r.Hosts, []string{"db1", "web1", "web2"}) {
		t.Errorf("recurring half-open-clients %+v, want 3 bundles on db1 web1 web2", r)
	}
	if r := rec[analyze.IDSynQueueOverflow]; r.Bundles != 2 || !slices.Equal(r.Hosts, []string{"web1", "web2"}) {
		t.Errorf("recurring syn-queue-overflow %+v, want 2 bundles on web1 web2", r)
	}
	h := rep.HalfOpen
	if h.Incidents != 3 || h.Class != fleet.ClassRecurring {
		t.Errorf("half-open: %d incidents, class %q; want 3, %s", h.Incidents, h.Class, fleet.ClassRecurring)
	}
	if len(h.Sources) != 2 || h.Sources[0].Incidents != 2 || h.Sources[0].Prefix != fleet.Prefix(h.Sources[0].Addr) ||
		!slices.Equal(h.Sources[0].Hosts, []string{"web1", "web2"}) {
		t.Errorf("half-open sources %+v, want the v4 client in 2 incidents on web1 and web2 first", h.Sources)
	}
	busy := 0
	for _, l := range rep.Load {
		if l.AcceptRate != nil && *l.AcceptRate > 0 && l.Worst != "critical" && l.Worst != "warning" {
			busy++
		}
	}
	if len(rep.Load) != n || busy != 2 {
		t.Errorf("load rows %d (%d healthy and accepting), want %d and 2", len(rep.Load), busy, n)
	}
	if rep.Exit != analyze.ExitCritical {
		t.Errorf("exit %d, want %d", rep.Exit, analyze.ExitCritical)
	}
	var b bytes.Buffer
	if err := fleet.RenderJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	testutil.ValidateJSON(t, schema.Fleet, b.Bytes())
}
