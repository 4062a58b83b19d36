package analyze

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdiag/snapdiag/internal/testutil"
)

// -update re-records the fixtures under testdata/ from this machine: the raw
// /proc files the parser tests read, and a real bundle written by
// snapdiag capture. Fixtures are recorded, never typed by hand.
var update = flag.Bool("update", false, "re-record testdata from this machine")

// procFiles are the /proc files the parser tests read, recorded as they are.
var procFiles = []string{
	"net/netstat", "net/snmp", "net/snmp6", "net/sockstat", "net/sockstat6",
	"net/softnet_stat", "net/dev", "net/stat/nf_conntrack",
	"sys/net/ipv4/tcp_mem", "sys/net/ipv4/ip_local_port_range", "sys/fs/file-nr", "sys/kernel/osrelease",
}

func TestRecordProc(t *testing.T) {
	if !*update {
		t.Skip("run with -update to re-record testdata/proc from this machine")
	}
	for _, f := range procFiles {
		b, err := os.ReadFile(filepath.Join("/proc", f))
		if errors.Is(err, fs.ErrNotExist) {
			t.Logf("%s: absent on this machine", f)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join("testdata", "proc", f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// hostSysctl reports whether TestRecordHostBundle keeps the sysctl member
// rel (a path under proc/sys/): the families the listen-path rules read (the
// TCP and port-range knobs, net.core, the default neighbour table, conntrack,
// the file-descriptor limits). The rest of the net.* tree a capture stores,
// per-interface conf and neigh directories and IPv6 above all, is four fifths
// of the files and no test reads it.
func hostSysctl(rel string) bool {
	for _, prefix := range []string{"fs/", "net/core/", "net/ipv4/tcp_", "net/ipv4/ip_local_", "net/ipv4/neigh/default/", "net/netfilter/"} {
		if strings.HasPrefix(rel, prefix) {
			return true
		}
	}
	return false
}

// TestRecordHostBundle captures this machine with the real snapdiag binary
// and unpacks the bundle into testdata/host, keeping of proc/sys only what
// hostSysctl selects (the manifest still lists every file the capture
// stored): a healthy host, the base the rule tests tweak where a kernel
// state cannot be produced here.
func TestRecordHostBundle(t *testing.T) {
	if !*update {
		t.Skip("run with -update to re-record testdata/host with snapdiag capture")
	}
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar not found")
	}
	bin := testutil.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
	outDir := t.TempDir()
	out, err := exec.Command(bin, "capture", "--out", outDir, "--samples", "3", "--interval", "500ms",
		"--sample", "1s", "--reason", "analyze testdata: healthy host").Output()
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	path := lines[len(lines)-1]
	unpacked := t.TempDir()
	if out, err := exec.Command("tar", "--zstd", "-xf", path, "-C", unpacked).CombinedOutput(); err != nil {
		t.Fatalf("unpack: %v\n%s", err, out)
	}
	dst := filepath.Join("testdata", "host")
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	kept, dropped := 0, 0
	err = filepath.WalkDir(unpacked, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(unpacked, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if sys, ok := strings.CutPrefix(rel, "proc/sys/"); ok && !hostSysctl(sys) {
			dropped++
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		kept++
		// Member files are 0600 in the bundle; make them readable in the tree.
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("testdata/host: %d files kept, %d sysctls left out", kept, dropped)
}
