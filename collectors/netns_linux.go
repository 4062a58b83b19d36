package collectors

import (
	"path/filepath"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
	"golang.org/x/sys/unix"
)

// netRoot is the directory whose net/ holds the /proc/net files of the
// namespace h reads: the proc root for the process's own namespace, else
// the namespace thread's /proc/PID/task/TID, whose net/ is that thread's
// namespace's (proc_tgid_net_lookup() follows the task it is under, not the
// reader) and can be read from any thread.
func (h Host) netRoot() string {
	if h.NS == nil {
		return h.Proc
	}
	return filepath.Dir(h.NS.ProcNet(h.Proc))
}

// readNet reads the per-namespace file rel, relative to the proc root
// ("net/snmp", "sys/net/netfilter/nf_conntrack_count"), as the namespace h
// reads shows it. A file under sys/ is opened on the namespace's thread:
// /proc/sys/net resolves by the opening task's namespace (net_ctl_header_lookup()
// uses current->nsproxy->net_ns), whichever /proc path leads to it.
func (h Host) readNet(rel string) ([]byte, error) {
	if h.NS == nil || !strings.HasPrefix(rel, "sys/") {
		return readFile(filepath.Join(h.netRoot(), rel))
	}
	var (
		data []byte
		err  error
	)
	if derr := h.NS.Do(func() { data, err = readFile(filepath.Join(h.Proc, rel)) }); derr != nil {
		return nil, derr
	}
	return data, err
}

// copyNet stores the per-namespace file rel (as readNet reads it) as member
// name, exactly as read.
func (h Host) copyNet(w *bundle.Writer, rel, name string) error {
	data, err := h.readNet(rel)
	if err != nil {
		return err
	}
	return w.WriteFile(name, data)
}

// socket opens a socket in the namespace h reads.
func (h Host) socket(domain, typ, proto int) (int, error) {
	if h.NS == nil {
		return unix.Socket(domain, typ, proto)
	}
	return h.NS.Socket(domain, typ, proto)
}

// opener is the sock_diag socket opener for h: nil, the default, for the
// process's own namespace.
func (h Host) opener() sockdiag.Opener {
	if h.NS == nil {
		return nil
	}
	return h.NS.Socket
}
