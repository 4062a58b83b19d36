package analyze

import (
	"fmt"
	"strconv"
	"strings"
)

// sysctlRec recommends setting key to value, with the command that does it
// now and the line that keeps it across reboots.
func sysctlRec(s *Snapshot, key, value, why string) Recommendation {
	cur, ok := s.Sysctls.Get(key)
	if !ok {
		cur = ""
	}
	arg := value
	if strings.ContainsAny(value, " \t") {
		arg = strconv.Quote(value)
	}
	return Recommendation{
		Action:   "sysctl",
		Key:      key,
		Current:  cur,
		Value:    value,
		Why:      why,
		Commands: []string{fmt.Sprintf("sysctl -w %s=%s", key, arg)},
		Persist:  fmt.Sprintf("%s = %s  # %s", key, value, SysctlConfFile),
	}
}

// note makes an advice-only recommendation (no command runs it).
func note(action, why string, commands ...string) Recommendation {
	if commands == nil {
		commands = []string{}
	}
	return Recommendation{Action: action, Why: why, Commands: commands}
}

// targetBacklog is the listen() backlog to suggest for a listener whose
// queue overflowed: at least 4096 (the modern somaxconn default) and at
// least four times what it has, within the 16-bit field of older kernels.
func targetBacklog(sendQ uint32) int64 {
	t := int64(4096)
	if q := int64(sendQ) * 4; q > t {
		t = q
	}
	if t > 65535 {
		t = 65535
	}
	return t
}

// BacklogAdvice is the listen backlog a listener should ask for, and the
// limits that stand between the application's listen() call and that
// queue.
type BacklogAdvice struct {
	// Listener is the listener to raise; nil when no listener was named.
	Listener *ListenerState
	// Target is the backlog to set: at least 4096 and at least four times
	// the current Send-Q, within 65535.
	Target int64
	// Somaxconn is net.core.somaxconn, 0 when the bundle lacks it.
	// RaiseSomaxconn is true when it would clamp Target; SomaxconnOldDefault
	// when the kernel is before 5.4 and somaxconn is at most its old
	// default, 128.
	Somaxconn           int64
	RaiseSomaxconn      bool
	SomaxconnOldDefault bool
	// RaiseMaxSynBacklog is true on kernels before 4.4, where
	// reqsk_queue_alloc() sized the SYN queue from min(backlog,
	// tcp_max_syn_backlog), and tcp_max_syn_backlog is below Target (or
	// unknown).
	RaiseMaxSynBacklog bool
}

// adviseBacklog decides the listen backlog for l (nil: a listener the
// bundle does not name).
func adviseBacklog(s *Snapshot, l *ListenerState) BacklogAdvice {
	a := BacklogAdvice{Listener: l}
	var sendQ uint32
	if l != nil {
		sendQ = l.SendQ
	}
	a.Target = targetBacklog(sendQ)
	if somax, ok := s.Sysctls.Int("net.core.somaxconn"); ok {
		a.Somaxconn = somax
		a.RaiseSomaxconn = somax < a.Target
		a.SomaxconnOldDefault = !s.Kernel.AtLeast(5, 4, 0) && somax <= 128
	}
	if !s.Kernel.AtLeast(4, 4, 0) {
		tmsb, ok := s.Sysctls.Int("net.ipv4.tcp_max_syn_backlog")
		a.RaiseMaxSynBacklog = !ok || tmsb < a.Target
	}
	return a
}

// recommendations renders the advice: somaxconn when it would clamp the new
// backlog, tcp_max_syn_backlog before 4.4, and the application's own
// listen() call, which must be made again for either to take effect (the
// clamp happens only at listen() time, in __sys_listen_socket()). why ends
// the application's recommendation.
func (a BacklogAdvice) recommendations(s *Snapshot, why string) []Recommendation {
	var recs []Recommendation
	target := strconv.FormatInt(a.Target, 10)
	if a.RaiseSomaxconn {
		w := fmt.Sprintf("somaxconn (%d) caps every listen() backlog, the SYN queue's and the accept queue's alike; "+
			"it takes effect only when the application calls listen() again", a.Somaxconn)
		if a.SomaxconnOldDefault {
			w = fmt.Sprintf("on kernels before 5.4 somaxconn defaults to 128, too small for a busy server; "+
				"it caps every listen() backlog (now %d) and takes effect only when the application calls listen() again", a.Somaxconn)
		}
		recs = append(recs, sysctlRec(s, "net.core.somaxconn", target, w))
	}
	if a.RaiseMaxSynBacklog {
		recs = append(recs, sysctlRec(s, "net.ipv4.tcp_max_syn_backlog", target,
			fmt.Sprintf("on kernel %s (before 4.4) tcp_max_syn_backlog still caps the SYN queue together with the listen backlog", s.Kernel)))
	}
	who := "the application"
	where := "the listener"
	cur := ""
	if l := a.Listener; l != nil {
		where = l.Local
		if l.Comm != "" {
			who = fmt.Sprintf("%s (pid %d)", l.Comm, l.PID)
		}
		cur = fmt.Sprintf(" from %d", l.SendQ)
	}
	recs = append(recs, note("app", fmt.Sprintf(
		"raise %s's listen() backlog on %s%s to %d (its own setting: nginx 'listen ... backlog=', Java ServerSocket backlog, "+
			"Python socketserver request_queue_size; Go uses somaxconn) and restart or reload it so it calls listen() again. %s",
		who, where, cur, a.Target, why)))
	return recs
}

// shortList renders at most n items of a list, with the count of the rest.
func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
