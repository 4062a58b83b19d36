package netns

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/snapdiag/snapdiag/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestPidsIn: the processes of a namespace are found by the inode their
// ns/net link names, and only they: a process started in a namespace of
// its own is the one process of it, and this test's process is among
// those of its own namespace, not of the other. A copy of /proc, whose
// ns/net is a plain file, is read by stat.
func TestPidsIn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a network namespace of its own")
	}
	pid := testutil.Sleep(t, 60, true)
	other := testutil.Inode(t, filepath.Join("/proc", strconv.Itoa(pid), "ns/net"))
	own := testutil.Inode(t, "/proc/self/ns/net")
	if other == own {
		t.Fatal("the child shares this process's namespace")
	}
	if got := pidsIn("/proc", other); !slices.Equal(got, []int{pid}) {
		t.Errorf("pidsIn(its namespace) = %v, want [%d]", got, pid)
	}
	if got := pidsIn("/proc", own); !slices.Contains(got, os.Getpid()) || slices.Contains(got, pid) {
		t.Errorf("pidsIn(this namespace) = %v: want this process (%d), not the child (%d)", got, os.Getpid(), pid)
	}

	copyProc := t.TempDir()
	file := filepath.Join(copyProc, "42", "ns", "net")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := pidsIn(copyProc, testutil.Inode(t, file)); !slices.Equal(got, []int{42}) {
		t.Errorf("pidsIn(a copy of /proc) = %v, want [42]", got)
	}
}

// BenchmarkPidsIn finds the processes of this process's namespace among
// all of /proc's, by the inode the ns/net links name (readlink, pidsIn)
// and, for comparison, by following each link (stat), as pidsIn did
// before; -benchtime 200x on a host's /proc reports both per process.
func BenchmarkPidsIn(b *testing.B) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		b.Fatal(err)
	}
	n := len(pids("/proc"))
	b.Run("readlink", func(b *testing.B) {
		for b.Loop() {
			pidsIn("/proc", st.Ino)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/process")
	})
	b.Run("stat", func(b *testing.B) {
		for b.Loop() {
			var out []int
			for _, pid := range pids("/proc") {
				var pst unix.Stat_t
				if err := unix.Stat(filepath.Join("/proc", strconv.Itoa(pid), "ns/net"), &pst); err == nil && pst.Ino == st.Ino {
					out = append(out, pid)
				}
			}
			_ = out
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/process")
	})
}
