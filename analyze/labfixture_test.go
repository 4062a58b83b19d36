package analyze_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/lab"
)

// -record re-records the lab fixtures under ../fixtures: a real incident in
// network namespaces, captured by the real snapdiag binary.
var (
	record     = flag.Bool("record", false, "re-record ../fixtures from lab incidents (needs root)")
	recordOnly = flag.String("record-only", "", "with -record, re-record only the fixture of this name")
)

// labFixtures are the incidents recorded with -record and the findings
// (id -> worst severity) each must yield.
var labFixtures = []struct {
	name string
	port string
	ipv6 bool
	run  func(t *testing.T, l *lab.Lab) error
	want map[string]analyze.Severity
}{
	{
		name: "synflood-cookies-off-v4",
		run: func(t *testing.T, l *lab.Lab) error {
			_, err := lab.SYNFlood(l, lab.SYNFloodOpts{Syncookies: 0, Sustain: 6 * time.Second})
			return err
		},
		want: map[string]analyze.Severity{analyze.IDSynQueueOverflow: analyze.Critical, analyze.IDRiskySysctl: analyze.Warning,
			analyze.IDHalfOpenClients: analyze.Warning},
	},
	{
		name: "synflood-cookies-off-v6",
		ipv6: true,
		run: func(t *testing.T, l *lab.Lab) error {
			_, err := lab.SYNFlood(l, lab.SYNFloodOpts{Syncookies: 0, IPv6: true, Sustain: 6 * time.Second})
			return err
		},
		want: map[string]analyze.Severity{analyze.IDSynQueueOverflow: analyze.Critical, analyze.IDRiskySysctl: analyze.Warning,
			analyze.IDHalfOpenClients: analyze.Warning},
	},
	{
		name: "synflood-cookies-on-v4",
		run: func(t *testing.T, l *lab.Lab) error {
			_, err := lab.SYNFlood(l, lab.SYNFloodOpts{Syncookies: 1, Sustain: 6 * time.Second})
			return err
		},
		want: map[string]analyze.Severity{analyze.IDSyncookiesActive: analyze.Warning, analyze.IDHalfOpenClients: analyze.Warning},
	},
	{
		name: "three-quarter-rule",
		run: func(t *testing.T, l *lab.Lab) error {
			_, err := lab.SYNFlood(l, lab.SYNFloodOpts{Syncookies: 0, Backlog: 64, MaxSynBacklog: 16, Sustain: 6 * time.Second})
			return err
		},
		want: map[string]analyze.Severity{analyze.IDSynQueueOverflow: analyze.Critical, analyze.IDRiskySysctl: analyze.Warning,
			analyze.IDHalfOpenClients: analyze.Info},
	},
	{
		name: "syncookies-2",
		run: func(t *testing.T, l *lab.Lab) error {
			_, err := lab.SYNFlood(l, lab.SYNFloodOpts{Syncookies: 2, BadClients: 5, Sustain: 6 * time.Second})
			return err
		},
		want: map[string]analyze.Severity{analyze.IDRiskySysctl: analyze.Warning, analyze.IDHalfOpenClients: analyze.Info},
	},
	{
		name: "accept-queue-never-accepts",
		port: "8081",
		run: func(t *testing.T, l *lab.Lab) error {
			_, err := lab.AcceptQueueFull(l, lab.AcceptQueueOpts{})
			return err
		},
		want: map[string]analyze.Severity{analyze.IDAcceptQueueOverflow: analyze.Critical},
	},
	{
		name: "healthy-busy",
		port: "8083",
		run: func(t *testing.T, l *lab.Lab) error {
			_, err := lab.HealthyBusy(l, lab.BusyOpts{Window: 10 * time.Second})
			return err
		},
		want: map[string]analyze.Severity{},
	},
}

func TestRecordLabFixtures(t *testing.T) {
	if !*record {
		t.Skip("run with -record (as root) to re-record ../fixtures from lab incidents")
	}
	bin := lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
	for _, fx := range labFixtures {
		t.Run(fx.name, func(t *testing.T) {
			if *recordOnly != "" && *recordOnly != fx.name {
				t.Skip("not selected by -record-only")
			}
			l := lab.New(t, lab.Options{IPv6: fx.ipv6})
			if err := fx.run(t, l); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			port := fx.port
			if port == "" {
				port = "8080"
			}
			o, err := l.Exec(ctx, l.Server, bin, "capture", "--out", out, "--port", port,
				"--samples", "3", "--interval", "1s", "--sample", "2s", "--reason", "lab: "+fx.name)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(o.Stdout)), "\n")
			b, err := os.ReadFile(lines[len(lines)-1])
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join("..", "fixtures", fx.name)
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, "bundle.tar.zst"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLabFixtures analyzes every recorded lab fixture and checks its
// findings.
func TestLabFixtures(t *testing.T) {
	for _, fx := range labFixtures {
		t.Run(fx.name, func(t *testing.T) {
			p := filepath.Join("..", "fixtures", fx.name, "bundle.tar.zst")
			if _, err := os.Stat(p); err != nil {
				t.Skipf("%s not recorded yet (go test ./analyze -run TestRecordLabFixtures -record)", p)
			}
			s, err := analyze.LoadPath(p)
			if err != nil {
				t.Fatal(err)
			}
			r := analyze.Analyze(s, p, analyze.Rules())
			got := map[string]analyze.Severity{}
			for _, f := range r.Findings {
				if f.ID == analyze.IDBundleIncomplete || f.ID == analyze.IDListenDropsHistory {
					continue
				}
				if cur, ok := got[f.ID]; !ok || f.Severity > cur {
					got[f.ID] = f.Severity
				}
			}
			for id, sev := range fx.want {
				if got[id] != sev {
					t.Errorf("%s: severity %v, want %v", id, got[id], sev)
				}
			}
			for id := range got {
				if _, ok := fx.want[id]; !ok {
					t.Errorf("unexpected finding %s", id)
				}
			}
			if t.Failed() {
				var b strings.Builder
				analyze.RenderText(&b, r, analyze.TextOptions{})
				t.Log(b.String())
			}
		})
	}
}
