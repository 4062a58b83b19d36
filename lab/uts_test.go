package lab

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestInUTS: a process started in InUTS sees the host name it was given;
// the test process keeps its own.
func TestInUTS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip(SkipMessage)
	}
	before, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	err = InUTS("lab-uts-host", func() error {
		var err error
		out, err = exec.Command("cat", "/proc/sys/kernel/hostname").Output()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "lab-uts-host" {
		t.Errorf("the child's host name is %q, want lab-uts-host", got)
	}
	if after, _ := os.Hostname(); after != before {
		t.Errorf("the test's host name changed from %q to %q", before, after)
	}
}
