package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/fleet"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"github.com/snapdiag/snapdiag/schema"
)

// TestFleetLabHosts: three hosts, each a network namespace seen by a
// capture whose UTS namespace carries the host's name. imap1 and imap2
// have the classic incident: the same broken client (one address, the
// two labs share their address plan) whose handshakes never complete
// fills the SYN queue of port 8080 on both, each host captured twice
// during it; imap3 only listens. Every capture uploads itself to a real
// S3 server (capture --upload), and snapdiag fleet over the bucket names
// the hosts, the two that failed, and their broken client as a recurring
// one: seen in two incidents, one per host, each captured twice (two
// captures of one host's sustained flood are one incident, and would not
// make a client recurrent by themselves), and imap3 as never failed.
func TestFleetLabHosts(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("diag")
	bin := testutil.Snapdiag(t)
	type host struct {
		name  string
		lab   *lab.Lab
		flood *lab.Flood
	}
	var hosts []host
	for _, name := range []string{"imap1", "imap2", "imap3"} {
		var o lab.Options
		if name == "imap2" {
			// imap1's address plan: its broken client has the same
			// address, as one client hitting both hosts would.
			o.Net = hosts[0].lab.Net
		}
		l := lab.New(t, o)
		h := host{name: name, lab: l}
		if name == "imap3" {
			if _, err := l.Listen(netip.AddrPortFrom(l.ServerIP, 8080), 128, lab.AcceptClose); err != nil {
				t.Fatal(err)
			}
		} else {
			// Sustained, so SYNs keep overflowing the queue through both
			// captures; stopped once they are done.
			f, err := lab.SYNFlood(l, lab.SYNFloodOpts{Port: 8080, Sustain: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Stop()
			h.flood = f
		}
		hosts = append(hosts, h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := append(os.Environ(), srv.Env()...)
	capture := func(h host) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := lab.InUTS(h.name, func() error {
			cmd := exec.CommandContext(ctx, bin, "capture", "--netns", h.lab.Server, "--out", t.TempDir(),
				"--samples", "2", "--interval", "500ms", "--sample", "2s", "--port", "8080", "--reason", "lab: fleet",
				"--upload", "s3://diag/prod")
			cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
			return cmd.Run()
		})
		if err != nil {
			t.Fatalf("capture on %s: %v\n%s", h.name, err, stderr.String())
		}
	}
	for _, h := range hosts {
		capture(h)
		if h.flood != nil {
			capture(h)
		}
	}
	for _, h := range hosts {
		if h.flood != nil {
			h.flood.Stop()
		}
	}

	cmd := exec.CommandContext(ctx, bin, "fleet", "--format", "json", "s3://diag/prod")
	var stdout, stderr bytes.Buffer
	cmd.Env, cmd.Stdout, cmd.Stderr = append(env, "XDG_CACHE_HOME="+t.TempDir()), &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != analyze.ExitCritical {
		t.Fatalf("fleet: %v, want exit %d (the incidents are critical)\n%s", err, analyze.ExitCritical, stderr.String())
	}
	testutil.ValidateJSON(t, schema.Fleet, stdout.Bytes())
	var rep fleet.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Bundles != 5 || len(rep.Failed) != 0 {
		t.Fatalf("%d bundles, failed %+v; want the 5 captures", rep.Bundles, rep.Failed)
	}
	incidents := map[string]int{}
	for _, h := range rep.Hosts {
		incidents[h.Host] = h.Incidents
	}
	if want := map[string]int{"imap1": 2, "imap2": 2, "imap3": 0}; !maps.Equal(incidents, want) {
		t.Errorf("incidents per host %v, want %v", incidents, want)
	}
	if !slices.Equal(rep.Healthy, []string{"imap3"}) {
		t.Errorf("hosts that never failed %v, want [imap3]", rep.Healthy)
	}
	// A half-open client shows in a packet sample by its SYN-ACK
	// retransmits (new SYNs are dropped while the queue is full), which the
	// kernel spaces 1, 2, 4, 8, 16 s apart: a
	// capture whose window falls in a long gap sees none and names no
	// source (it counts in none_seen, and may stand as an incident of its
	// own). Under load that happens to one capture in a few; the class,
	// the one client and its two hosts must hold all the same.
	h := rep.HalfOpen
	if h.Bundles != 4 || h.Incidents < 2 || h.Class != fleet.ClassRecurring || h.Recurrent != 1 || h.WithSources < 2 || h.WithSources+h.NoneSeen != h.Incidents {
		t.Errorf("half-open: %+v; want 4 bundles in 2 or more incidents, at least 2 naming sources, 1 recurrent source, %s", h, fleet.ClassRecurring)
	}
	bad := hosts[0].lab.BadIP.String()
	if len(h.Sources) != 1 {
		t.Fatalf("half-open sources %+v, want only the broken client %s", h.Sources, bad)
	}
	if c := h.Sources[0]; c.Addr != bad || c.Prefix != fleet.Prefix(bad) || c.Incidents < 2 || c.Bundles < 2 || !slices.Equal(c.Hosts, []string{"imap1", "imap2"}) || !c.Recurrent {
		t.Errorf("half-open source %+v, want the broken client %s on imap1 and imap2, recurrent, in 2 or more incidents", c, bad)
	}
}
