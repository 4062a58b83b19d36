package analyze

import (
	"path/filepath"
	"testing"
)

// TestHalfOpenSeverityByKernel reads the three-quarter-rule fixture (backlog
// 64, tcp_max_syn_backlog 16, cookies off) as recorded and as if from a 3.10
// kernel. The 3/4 rule of tcp_max_syn_backlog bit on both, and before 4.4
// that sysctl also sized the SYN queue itself: the half-open requests can fill
// the queue on either kernel, so the finding is a warning on both, and the
// diagnosis says that tcp_max_syn_backlog set the cap they were weighed
// against.
func TestHalfOpenSeverityByKernel(t *testing.T) {
	for _, release := range []string{"", "3.10.0-1160.el7.x86_64"} {
		s, err := LoadPath(filepath.Join("..", "fixtures", "three-quarter-rule", "bundle.tar.zst"))
		if err != nil {
			t.Fatal(err)
		}
		if release != "" {
			if s.Kernel, err = parseKernelRelease(release); err != nil {
				t.Fatal(err)
			}
		}
		r := Analyze(s, "three-quarter-rule", Rules())
		f := findingByID(t, r, IDHalfOpenClients)
		d := diagnosis[*HalfOpenClients](t, f)
		if f.Severity != Warning {
			t.Errorf("kernel %s: half-open-clients %s, want warning", s.Kernel, f.Severity)
		}
		// ⌊3/4·16⌋+1 = 13 on both kernels; 3.10's own queue size,
		// roundup_pow_of_two(min(64, 16)+1) = 32, is above it.
		if d.QueueCap != 13 || !d.CapFromMaxSynBacklog {
			t.Errorf("kernel %s: weighed against a SYN queue of %d (from tcp_max_syn_backlog: %v), want 13, true",
				s.Kernel, d.QueueCap, d.CapFromMaxSynBacklog)
		}
	}
}
