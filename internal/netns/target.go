package netns

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"

	"github.com/snapdiag/snapdiag/bundle"
)

// Target is a namespace an operator named, resolved and, when this process
// may, entered.
type Target struct {
	// NetNS names it and its owner, for the manifest.
	NetNS bundle.NetNS
	// Thread is in the namespace; nil when EnterErr is set.
	Thread *Thread
	// EnterErr is why the namespace could not be entered (setns(2) needs
	// CAP_SYS_ADMIN): only what /proc/PID/net shows of it can be read, and
	// only when a process in it is known (ProcDir).
	EnterErr error
	// inPID is a process found in a namespace named by its file, when it
	// could not be entered: ProcDir reads the namespace through it.
	inPID int
}

// Open resolves s under the proc root given and enters the namespace. It
// fails when the namespace cannot be found or named; a namespace found but
// not entered is returned with EnterErr set, so the caller can read what it
// still may; so is a process's namespace whose file may not be opened
// (another user's, without CAP_SYS_PTRACE), its inode left 0. The zero Spec is not a target: Open refuses it.
func Open(proc string, s Spec) (*Target, error) {
	if s.IsZero() {
		return nil, fmt.Errorf("no network namespace named (--netns, --pid or --container)")
	}
	n, err := Resolve(proc, s)
	if err != nil && n.PID != 0 && errors.Is(err, fs.ErrPermission) {
		// Not entered, but readable through /proc/PID/net (ProcDir).
		return &Target{NetNS: n, EnterErr: err}, nil
	}
	if err != nil {
		return nil, err
	}
	t := &Target{NetNS: n}
	th, err := Enter(n.Path)
	if err != nil {
		t.EnterErr = err
		if n.PID == 0 && !n.HostNS {
			// A namespace named by its file has no process of its own,
			// but any process in it shows it in /proc/PID/net.
			if pids := pidsIn(proc, n.Inode); len(pids) > 0 {
				t.inPID = pids[0]
			}
		}
		return t, nil
	}
	if th.Inode() != n.Inode {
		// The process named by pid ended and its pid was reused, or the
		// bind mount was replaced, between Resolve and Enter.
		th.Close()
		return nil, fmt.Errorf("network namespace %s changed while it was entered (inode %d, then %d): try again", n.Path, n.Inode, th.Inode())
	}
	t.Thread = th
	return t, nil
}

// ProcDir is the /proc/PID directory of a process in the namespace, whose
// net/ shows the namespace without entering it; "" when no process is known
// (a namespace named by an ip netns name or a bind mount, that no process
// is in).
func (t *Target) ProcDir(proc string) string {
	pid := cmp.Or(t.NetNS.PID, t.inPID)
	if pid == 0 {
		return ""
	}
	return filepath.Join(proc, strconv.Itoa(pid))
}

// Close leaves the namespace: the thread ends. It is safe on a nil Target.
func (t *Target) Close() {
	if t != nil && t.Thread != nil {
		t.Thread.Close()
	}
}
