package collectors

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/sys/unix"
)

// capNames are the capabilities that decide what a capture can see.
var capNames = []struct {
	bit  uint
	name string
}{
	{1, "CAP_DAC_OVERRIDE"},
	{2, "CAP_DAC_READ_SEARCH"},
	{12, "CAP_NET_ADMIN"},
	{13, "CAP_NET_RAW"},
	{19, "CAP_SYS_PTRACE"},
	{21, "CAP_SYS_ADMIN"},
	{34, "CAP_SYSLOG"},
}

// HostFacts reads the facts about this machine and this process that the
// manifest carries. It never fails: what cannot be read stays empty.
func HostFacts(h Host) bundle.Host {
	var out bundle.Host
	out.Hostname = Hostname()
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		out.KernelRelease = unix.ByteSliceToString(uts.Release[:])
		out.KernelVersion = unix.ByteSliceToString(uts.Version[:])
		out.Machine = unix.ByteSliceToString(uts.Machine[:])
	}
	if data, err := readFile(filepath.Join(h.Proc, "sys/kernel/random/boot_id")); err == nil {
		out.BootID = trimNL(data)
	}
	var st unix.Stat_t
	if unix.Stat(filepath.Join(h.Proc, "thread-self/ns/net"), &st) == nil {
		out.NetNSInode = st.Ino
	} else if unix.Stat(filepath.Join(h.Proc, "self/ns/net"), &st) == nil {
		out.NetNSInode = st.Ino
	}
	out.EUID = os.Geteuid()
	if data, err := readFile(filepath.Join(h.Proc, "self/status")); err == nil {
		out.CapEff, out.Capabilities = parseCapEff(data)
	}
	return out
}

// EnvHostname names the environment variable that overrides the host name
// bundles are named and keyed by. A node agent in a pod has the pod's UTS
// namespace, so os.Hostname is the pod's name, which changes with every
// restart of the agent; its DaemonSet sets this to the node's name
// (spec.nodeName, through the downward API).
const EnvHostname = "SNAPDIAG_HOSTNAME"

// Hostname is the host name bundles carry: $SNAPDIAG_HOSTNAME when set,
// else the kernel's (os.Hostname); "" when neither is known.
func Hostname() string {
	if h := strings.TrimSpace(os.Getenv(EnvHostname)); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// parseCapEff reads the CapEff line of /proc/PID/status.
func parseCapEff(status []byte) (string, []string) {
	hex, ok := statusField(status, "CapEff")
	if !ok {
		return "", nil
	}
	mask, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return hex, nil
	}
	var names []string
	for _, c := range capNames {
		if mask&(1<<c.bit) != 0 {
			names = append(names, c.name)
		}
	}
	return hex, names
}

// statusField returns the value of the "name:" line of a /proc/PID/status,
// without the surrounding blanks.
func statusField(status []byte, name string) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// HasCap reports whether the host facts show the named effective capability.
func HasCap(h bundle.Host, name string) bool {
	for _, c := range h.Capabilities {
		if c == name {
			return true
		}
	}
	return false
}
