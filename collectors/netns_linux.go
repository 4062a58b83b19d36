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
		if h.NSProc != "" {
			return h.NSProc
		}
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
	if h.NS == nil && h.NSProc == "" && h.NSErr != nil {
		// Neither entered nor seen through a process in it: the proc root's
		// net/ would be this process's own namespace, not the one named.
		return nil, h.notEntered(filepath.Join(h.Proc, rel))
	}
	if h.NS == nil || !strings.HasPrefix(rel, "sys/") {
		if h.NSProc != "" && strings.HasPrefix(rel, "sys/") {
			return nil, h.notEntered(filepath.Join(h.Proc, rel))
		}
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
	if h.outside() {
		return -1, h.notEntered("")
	}
	if h.NS == nil {
		return unix.Socket(domain, typ, proto)
	}
	return h.NS.Socket(domain, typ, proto)
}

// opener is the sock_diag socket opener for h: nil, the default, for the
// process's own namespace.
func (h Host) opener() sockdiag.Opener {
	switch {
	case h.NS != nil:
		return h.NS.Socket
	case h.outside():
		return h.socket
	}
	return nil
}

// outside reports whether h names a namespace that this process could not
// enter (NSErr says why): what must be read from inside it fails, and
// /proc/net is read through NSProc when a process in it is known, or not
// at all.
func (h Host) outside() bool {
	return h.NS == nil && (h.NSProc != "" || h.NSErr != nil)
}

// notEnteredError is what a read that needs a thread inside the namespace
// returns when the namespace could not be entered.
type notEnteredError struct {
	what string
	err  error
}

func (e *notEnteredError) Error() string {
	msg := "not inside the target network namespace (" + e.err.Error() + ")"
	if e.what == "" {
		return msg
	}
	return e.what + ": " + msg
}

func (e *notEnteredError) Unwrap() error { return e.err }

// notEntered is the error of a read of what, which needs a thread inside
// the namespace h could not enter.
func (h Host) notEntered(what string) error {
	return &notEnteredError{what: what, err: h.NSErr}
}
