package collectors

import (
	"errors"
	"os"
	"testing"
)

// TestHostnameOverride: a node agent in a pod names its bundles after the
// node ($SNAPDIAG_HOSTNAME), not after its pod; unset or blank, the
// kernel's host name is kept.
func TestHostnameOverride(t *testing.T) {
	kernel, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name: %v", err)
	}
	t.Setenv(EnvHostname, "node-7.example")
	if got := HostFacts(DefaultHost()).Hostname; got != "node-7.example" {
		t.Errorf("with %s set, the manifest's host name is %q, want node-7.example", EnvHostname, got)
	}
	t.Setenv(EnvHostname, "  ")
	if got := HostFacts(DefaultHost()).Hostname; got != kernel {
		t.Errorf("with %s blank, the host name is %q, want the kernel's %q", EnvHostname, got, kernel)
	}
}

// TestReadSysctlsOutside: a live view of a namespace this process could not
// enter shows no sysctl rather than this process's own namespace's values.
func TestReadSysctlsOutside(t *testing.T) {
	h := DefaultHost()
	if got := ReadSysctls(h, []string{"net.core.somaxconn"}); len(got) != 1 {
		t.Skipf("net.core.somaxconn unreadable here: %v", got)
	}
	h.NSErr = errors.New("operation not permitted")
	if got := ReadSysctls(h, []string{"net.core.somaxconn"}); len(got) != 0 {
		t.Errorf("ReadSysctls outside the namespace: %v, want nothing", got)
	}
}
