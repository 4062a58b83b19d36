package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// unitBoundingSet reads the CapabilityBoundingSet= line of a unit file and
// returns it as setpriv's --bounding-set argument ("-all,+net_admin,...").
func unitBoundingSet(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapabilityBoundingSet=")
		if !ok {
			continue
		}
		arg := "-all"
		for _, c := range strings.Fields(v) {
			arg += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
		}
		return arg
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("%s has no CapabilityBoundingSet= line", path)
	return ""
}

// The systemd units bound the capture's capabilities: under exactly that
// bound (setpriv stands in for systemd, which this test cannot assume is
// running), a capture still gets every collector to ok and restores its
// priority for the write.
func TestCaptureUnderUnitCapabilityBound(t *testing.T) {
	testutil.NeedRoot(t, "bounding a capture's capabilities")
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	for _, unit := range []string{"snapdiag-capture@.service", "snapdiag-watch@.service"} {
		t.Run(unit, func(t *testing.T) {
			bound := unitBoundingSet(t, filepath.Join("..", "..", "deploy", "systemd", unit))
			dir := t.TempDir()
			r := testutil.Run(t, runLimit, "", nil, setpriv, "--bounding-set", bound, "--inh-caps", "-all", "--",
				testutil.Snapdiag(t), "capture", "--quiet", "--out", dir, "--samples", "2", "--sample", "500ms")
			if r.Code != 0 {
				t.Fatalf("capture under %s: exit %d, stderr %q", bound, r.Code, r.Stderr)
			}
			m := openBundle(t, lastLine(r.Stdout)).Manifest()
			for _, c := range m.Collectors {
				if c.Status != bundle.StatusOK {
					t.Errorf("collector %s under %s: %s (%s)", c.Name, bound, c.Status, c.Error)
				}
			}
			if m.Cost == nil || m.Cost.Priority == nil {
				t.Fatalf("under %s the manifest records no priority", bound)
			}
			if p := m.Cost.Priority; p.Lowered && !p.RestoredForWrite {
				t.Errorf("under %s the capture did not restore its priority for the write: %+v", bound, *p)
			}
		})
	}
}
