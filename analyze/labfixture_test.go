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
var record = flag.Bool("record", false, "re-record ../fixtures from lab incidents (needs root)")

// labFixtures are the incidents recorded with -record and the findings
// (id -> worst severity) each must yield.
var labFixtures = []struct {
	name string
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
}

func TestRecordLabFixtures(t *testing.T) {
	if !*record {
		t.Skip("run with -record (as root) to re-record ../fixtures from lab incidents")
	}
	bin := lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
	for _, fx := range labFixtures {
		t.Run(fx.name, func(t *testing.T) {
			l := lab.New(t, lab.Options{})
			if err := fx.run(t, l); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			o, err := l.Exec(ctx, l.Server, bin, "capture", "--out", out, "--port", "8080",
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
