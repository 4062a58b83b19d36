package collectors

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/lab"
)

// TestSysctlsUnreadableCount: the manifest names as many unreadable sysctls
// as it counts (the note once said "6 of ..." and listed 5).
func TestSysctlsUnreadableCount(t *testing.T) {
	proc := t.TempDir()
	dir := filepath.Join(proc, "sys", "net", "core")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "somaxconn"), []byte("4096\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Not regular files: never so in a real /proc/sys, so unreadable in a copy.
	for i := range 6 {
		if err := syscall.Mkfifo(filepath.Join(dir, fmt.Sprintf("fifo%d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := collectSysctls(t, proc)
	if m.Sysctls.Read != 1 || m.Sysctls.Unreadable != 6 || len(m.Sysctls.UnreadableKeys) != 6 {
		t.Errorf("read %d, unreadable %d, named %q; want 1, 6 and 6 named",
			m.Sysctls.Read, m.Sysctls.Unreadable, m.Sysctls.UnreadableKeys)
	}
}

// TestSysctlsSkipsWriteOnly: a key nobody may read (net.ipv4.route.flush
// is 0200) is neither stored nor counted unreadable, even for root, whom a
// copy of /proc/sys would let read it.
func TestSysctlsSkipsWriteOnly(t *testing.T) {
	proc := t.TempDir()
	dir := filepath.Join(proc, "sys", "net", "ipv4", "route")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"flush": 0o200, "gc_timeout": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("300\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	m, members := collectSysctls(t, proc)
	_, flush := members[bundle.DirSysctl+"/net/ipv4/route/flush"]
	_, gc := members[bundle.DirSysctl+"/net/ipv4/route/gc_timeout"]
	if m.Sysctls.Read != 1 || m.Sysctls.Unreadable != 0 || flush || !gc {
		t.Errorf("read %d, unreadable %d, flush stored %v, gc_timeout stored %v; want 1, 0, false, true",
			m.Sysctls.Read, m.Sysctls.Unreadable, flush, gc)
	}
}

// TestSysctlsLongValue: a key whose value is longer than a first read
// (net.ipv4.ip_local_reserved_ports, here 6,000 bytes) is stored whole, as
// the kernel prints it, along with a short one. Read on from the offset,
// the reserved ports were cut at 512 bytes: the kernel's bitmap and
// integer handlers print nothing past offset 0.
func TestSysctlsLongValue(t *testing.T) {
	l := lab.New(t, lab.Options{})
	var ports []string
	for p := 10000; p < 12000; p += 2 {
		ports = append(ports, strconv.Itoa(p))
	}
	want := strings.Join(ports, ",") + "\n"
	if err := l.Do(l.Server, func() error {
		// Not l.Sysctl: it reads the value back with os.ReadFile, which
		// reads on from the offset too.
		return os.WriteFile("/proc/sys/net/ipv4/ip_local_reserved_ports", []byte(want), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.Sysctl(l.Server, "net.core.somaxconn", "77"); err != nil {
		t.Fatal(err)
	}
	s := &Sysctls{}
	w := bundle.NewMemWriter(0)
	if err := s.Collect(context.Background(), Host{Proc: "/proc", NS: enterNS(t, l.Server)}, w.For("sysctls")); err != nil {
		t.Fatal(err)
	}
	members := w.Take()
	for key, want := range map[string]string{
		"net/ipv4/ip_local_reserved_ports": want,
		"net/core/somaxconn":               "77\n",
	} {
		if got := string(members[bundle.DirSysctl+"/"+key]); got != want {
			t.Errorf("%s: %d bytes %.40q..., want %d bytes %.40q...", key, len(got), got, len(want), want)
		}
	}
}

// enterNS returns a thread in the lab namespace ns, closed when the test
// ends.
func enterNS(t *testing.T, ns string) *netns.Thread {
	t.Helper()
	th, err := netns.Enter(filepath.Join(netns.RunDir, ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { th.Close() })
	return th
}

// collectSysctls runs the collector on the copy of /proc at proc and
// returns its manifest and members.
func collectSysctls(t *testing.T, proc string) (bundle.Manifest, map[string][]byte) {
	t.Helper()
	s := &Sysctls{}
	w := bundle.NewMemWriter(0)
	if err := s.Collect(context.Background(), Host{Proc: proc}, w.For("sysctls")); err != nil {
		t.Fatal(err)
	}
	var m bundle.Manifest
	s.Annotate(&m)
	return m, w.Take()
}

// BenchmarkSysctlsCollect reads this machine's whole net.* tree, as capture
// does, into a bundle held in memory.
func BenchmarkSysctlsCollect(b *testing.B) {
	var read int
	for b.Loop() {
		s := &Sysctls{}
		if err := s.Collect(context.Background(), Host{Proc: "/proc"}, bundle.NewMemWriter(0).For("sysctls")); err != nil {
			b.Fatal(err)
		}
		read = s.info.Read
	}
	b.ReportMetric(float64(read), "sysctls")
}
