// Package top reads the live host for snapdiag top: every listener's queues
// and the host's listen-path counters, once per refresh, through the same
// collectors a capture uses, handed to the tui.Top model, which never
// collects.
package top

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/tui"
)

// MaxSources bounds the half-open sources one read lists; the requests of
// the others are counted together.
const MaxSources = 1000

// Source reads the live host for tui.Top. One Source serves a whole run: it
// remembers the listeners' owners, so a process is looked for once per
// listener, not once per refresh.
type Source struct {
	host  collectors.Host
	ports []int
	ln    collectors.Listeners
	now   func() time.Time
}

var _ tui.TopSource = (*Source)(nil)

// New returns a Source reading the host h describes (its proc root), showing
// only the listeners on ports when ports are given.
func New(h collectors.Host, ports []int) *Source {
	if h.Proc == "" {
		h.Proc = "/proc"
	}
	return &Source{host: h, ports: slices.Clone(ports), now: time.Now}
}

// Read implements tui.TopSource: one dump of the listeners (LISTEN and
// SYN_RECV in one walk of the kernel's tables) and one read of
// /proc/net/netstat.
func (s *Source) Read(ctx context.Context) tui.TopReading {
	r := tui.TopReading{At: s.now()}
	ls, err := s.ln.Read(ctx, s.host)
	if len(s.ports) > 0 {
		ls = slices.DeleteFunc(ls, func(l bundle.Listener) bool { return !slices.Contains(s.ports, l.Port) })
	}
	r.Listeners, r.ListenersErr = ls, err
	r.Counters, r.CountersErr = readListenPath(s.host)
	return r
}

// readListenPath reads the listen-path counters of the namespace h reads.
func readListenPath(h collectors.Host) (analyze.ListenPath, error) {
	data, err := collectors.ReadNetstat(h)
	if err != nil {
		return analyze.ListenPath{}, err
	}
	return analyze.ParseListenPath(bytes.NewReader(data))
}

// HalfOpen implements tui.TopSource from the socket table: the listener's
// SYN_RECV request sockets grouped by remote address.
func (s *Source) HalfOpen(ctx context.Context, local string) (tui.TopHalfOpen, error) {
	h, err := collectors.ReadHalfOpen(ctx, s.host, local, MaxSources)
	if err != nil {
		return tui.TopHalfOpen{}, err
	}
	out := tui.TopHalfOpen{Total: h.Total, Others: h.Others, Sources: make([]tui.TopHalfOpenSource, len(h.Sources))}
	for i, src := range h.Sources {
		out.Sources[i] = tui.TopHalfOpenSource{Addr: src.Addr.String(), Requests: src.Requests, MaxRetrans: int(src.MaxRetrans)}
	}
	return out, nil
}

// Blind says what a process with the credentials in facts cannot see, one
// line each, for the view to show: the listeners themselves, their queues,
// their drops and the counters need no privilege.
func Blind(facts bundle.Host, proc string) []string {
	var out []string
	root := facts.EUID == 0
	if !root && !collectors.HasCap(facts, "CAP_SYS_PTRACE") {
		// proc_fd_access_allowed() hides other users' /proc/PID/fd.
		out = append(out, "the process of another user's listener (needs root or CAP_SYS_PTRACE)")
	}
	if !collectors.HasCap(facts, "CAP_NET_RAW") {
		out = append(out, "packets: a bundle from 'c' has no packet sample (needs CAP_NET_RAW)")
	}
	if !collectors.HasCap(facts, "CAP_SYSLOG") && dmesgRestricted(proc) {
		// devkmsg_open() checks syslog access, which dmesg_restrict limits
		// to CAP_SYSLOG.
		out = append(out, "the kernel log: a bundle from 'c' has none (needs CAP_SYSLOG)")
	}
	return out
}

// dmesgRestricted reports whether kernel.dmesg_restrict is on.
func dmesgRestricted(proc string) bool {
	b, err := os.ReadFile(filepath.Join(proc, "sys", "kernel", "dmesg_restrict"))
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	return err != nil || strings.TrimSpace(string(b)) != "0"
}
