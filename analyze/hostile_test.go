package analyze

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
)

// hostileSentinels names the member errors of fixtures/hostile's
// expected-errors.json that a bundle can carry past bundle.Open.
var hostileSentinels = map[string]error{
	"ErrNotPcap": bundle.ErrNotPcap,
	"ErrLimit":   bundle.ErrLimit,
	"ErrCorrupt": bundle.ErrCorrupt,
}

// TestHostileMembers loads every bundle of fixtures/hostile that bundle.Open
// accepts (the hostile member cases): the hostile member must be refused
// with the expected error, recorded as a gap the report shows, and every
// other member still analyzed.
func TestHostileMembers(t *testing.T) {
	const dir = "../fixtures/hostile"
	raw, err := os.ReadFile(filepath.Join(dir, "expected-errors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expected map[string]string
	if err := json.Unmarshal(raw, &expected); err != nil {
		t.Fatal(err)
	}
	cases := 0
	for name, sentinel := range expected {
		p := filepath.Join(dir, name)
		b, err := bundle.Open(p, bundle.DefaultLimits())
		if err != nil {
			continue // refused whole: bundle.TestHostileFixtures covers it
		}
		b.Close()
		cases++
		t.Run(name, func(t *testing.T) {
			want, ok := hostileSentinels[sentinel]
			if !ok {
				t.Fatalf("no member error named %q", sentinel)
			}
			s, err := LoadBundle(p)
			if err != nil {
				t.Fatalf("LoadBundle: %v", err)
			}
			var gap *Gap
			for i := range s.Gaps {
				if errors.Is(s.Gaps[i].Cause, want) {
					gap = &s.Gaps[i]
				}
			}
			if gap == nil {
				t.Fatalf("no gap wraps %s: %+v", sentinel, s.Gaps)
			}
			if gap.Path == bundle.PathPackets && s.Packets != nil {
				t.Errorf("the refused packet sample was analyzed: %+v", s.Packets)
			}
			// The other members were read.
			if s.Manifest == nil || len(s.Samples) == 0 || len(s.Sysctls) == 0 {
				t.Errorf("manifest %v, %d samples, %d sysctls: the other members were not read", s.Manifest != nil, len(s.Samples), len(s.Sysctls))
			}
			// The report says which member it did without.
			r := Analyze(s, p, Rules())
			shown := false
			for _, f := range r.Findings {
				for _, e := range f.Evidence {
					shown = shown || f.ID == IDBundleIncomplete && e.Source == gap.Path
				}
			}
			if !shown {
				t.Errorf("no %s finding names %s", IDBundleIncomplete, gap.Path)
			}
		})
	}
	if cases == 0 {
		t.Fatal("no hostile member case in fixtures/hostile")
	}
}
