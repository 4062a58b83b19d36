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

// backlogRecs recommends a larger listen backlog for l: somaxconn when it
// would clamp the new backlog, and the application's own listen() call,
// which must be made again for either to take effect (section 1.1: the clamp
// happens only at listen() time, in __sys_listen_socket()).
func backlogRecs(s *Snapshot, l *ListenerState, why string) []Recommendation {
	var recs []Recommendation
	var sendQ uint32
	if l != nil {
		sendQ = l.SendQ
	}
	target := targetBacklog(sendQ)
	somax, haveSomax := s.Sysctls.Int("net.core.somaxconn")
	if haveSomax && somax < target {
		w := fmt.Sprintf("somaxconn (%d) caps every listen() backlog, the SYN queue's and the accept queue's alike; "+
			"it takes effect only when the application calls listen() again", somax)
		if !s.Kernel.AtLeast(5, 4, 0) && somax <= 128 {
			w = fmt.Sprintf("on kernels before 5.4 somaxconn defaults to 128, too small for a busy server; "+
				"it caps every listen() backlog (now %d) and takes effect only when the application calls listen() again", somax)
		}
		recs = append(recs, sysctlRec(s, "net.core.somaxconn", strconv.FormatInt(target, 10), w))
	}
	if !s.Kernel.AtLeast(4, 4, 0) {
		// Before 4.4 reqsk_queue_alloc() sized the SYN queue from
		// min(backlog, tcp_max_syn_backlog) (section 1.6).
		if tmsb, ok := s.Sysctls.Int("net.ipv4.tcp_max_syn_backlog"); !ok || tmsb < target {
			recs = append(recs, sysctlRec(s, "net.ipv4.tcp_max_syn_backlog", strconv.FormatInt(target, 10),
				fmt.Sprintf("on kernel %s (before 4.4) tcp_max_syn_backlog still caps the SYN queue together with the listen backlog", s.Kernel)))
		}
	}
	who := "the application"
	where := "the listener"
	if l != nil {
		where = l.Local
		if l.Comm != "" {
			who = fmt.Sprintf("%s (pid %d)", l.Comm, l.PID)
		}
	}
	cur := ""
	if l != nil {
		cur = fmt.Sprintf(" from %d", l.SendQ)
	}
	recs = append(recs, note("app", fmt.Sprintf(
		"raise %s's listen() backlog on %s%s to %d (its own setting: nginx 'listen ... backlog=', Java ServerSocket backlog, "+
			"Python socketserver request_queue_size; Go uses somaxconn) and restart or reload it so it calls listen() again. %s",
		who, where, cur, target, why)))
	return recs
}

// shortList renders at most n items of a list, with the count of the rest.
func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
