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

// TestRecordHostBundle captures this machine with the real snapdiag binary
// and unpacks the bundle into testdata/host: a healthy host, the base the
// rule tests tweak where a kernel state cannot be produced here.
func TestRecordHostBundle(t *testing.T) {
	if !*update {
		t.Skip("run with -update to re-record testdata/host with snapdiag capture")
	}
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar not found")
	}
	bin := filepath.Join(t.TempDir(), "snapdiag")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/snapdiag").CombinedOutput(); err != nil {
		t.Fatalf("build snapdiag: %v\n%s", err, out)
	}
	outDir := t.TempDir()
	out, err := exec.Command(bin, "capture", "--out", outDir, "--samples", "3", "--interval", "500ms",
		"--sample", "1s", "--reason", "analyze testdata: healthy host").Output()
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	path := lines[len(lines)-1]
	dst := filepath.Join("testdata", "host")
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "--zstd", "-xf", path, "-C", dst).CombinedOutput(); err != nil {
		t.Fatalf("unpack: %v\n%s", err, out)
	}
	// Member files are 0600 in the bundle; make them readable in the tree.
	_ = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			mode := os.FileMode(0o644)
			if d.IsDir() {
				mode = 0o755
			}
			_ = os.Chmod(p, mode)
		}
		return nil
	})
}
