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

// BacklogLimit says what set a listener's backlog in force (its Send-Q).
type BacklogLimit int

// Backlog limits.
const (
	// LimitUnknown: no listener, or the bundle lacks net.core.somaxconn.
	LimitUnknown BacklogLimit = iota
	// LimitSomaxconn: Send-Q equals somaxconn. __sys_listen_socket()
	// clamps the application's backlog to somaxconn, so the application
	// asked for at least that much and the kernel cut it.
	LimitSomaxconn
	// LimitApplication: Send-Q is below somaxconn, so it is what the
	// application asked for.
	LimitApplication
	// LimitSomaxconnLowered: Send-Q is above somaxconn: somaxconn was
	// lowered after the listen() call, and a re-listen would shrink the
	// queue to the new somaxconn.
	LimitSomaxconnLowered
)

// AppBacklog is where a known server sets its listen backlog.
type AppBacklog struct {
	// Server is the server's name; Setting says where its backlog is set
	// and what it defaults to.
	Server, Setting string
}

// appBacklogs maps a listener's comm to its server's backlog setting. Go
// programs have no common comm: net.Listen asks for somaxconn itself
// (maxListenerBacklog() reads /proc/sys/net/core/somaxconn), so a Go
// listener's Send-Q is somaxconn and raising somaxconn is its remedy.
var appBacklogs = []struct {
	comm string // the comm, or its prefix when it ends in '*'
	AppBacklog
}{
	{"nginx", AppBacklog{"nginx", "the 'backlog=' parameter of its 'listen' directive (default 511); " +
		"a reload calls listen() again with the new value"}},
	{"haproxy", AppBacklog{"HAProxy", "'backlog' on the 'bind' line or in the frontend (default: the frontend's maxconn)"}},
	{"envoy", AppBacklog{"Envoy", "the listener's 'tcp_backlog_size'"}},
	{"dovecot", AppBacklog{"dovecot", "no setting of its own: the backlog is the service's process_limit x client_limit " +
		"(in 'service <name> { }'), at least 4"}},
	{"master", AppBacklog{"Postfix", "no setting of its own: master(8) listens with the larger of the service's " +
		"master.cf maxproc and default_process_limit"}},
	{"java", AppBacklog{"Java", "the ServerSocket backlog argument (default 50); Tomcat's Connector acceptCount (default 100)"}},
	{"python*", AppBacklog{"Python", "socket.listen(backlog); socketserver's request_queue_size (default 5)"}},
	{"node", AppBacklog{"Node.js", "the backlog argument of server.listen() (default 511)"}},
}

// appBacklogFor returns the backlog setting of the server whose comm this
// is, or nil.
func appBacklogFor(comm string) *AppBacklog {
	for i := range appBacklogs {
		a := &appBacklogs[i]
		if p, ok := strings.CutSuffix(a.comm, "*"); ok && strings.HasPrefix(comm, p) || comm == a.comm {
			return &a.AppBacklog
		}
	}
	return nil
}

// BacklogAdvice is the listen backlog a listener should ask for, and the
// limits that stand between the application's listen() call and that
// queue.
type BacklogAdvice struct {
	// Listener is the listener to raise; nil when no listener was named.
	Listener *ListenerState
	// Target is the backlog to set: by default at least 4096 and at least
	// four times the current Send-Q, within 65535; a remedy sized by the
	// SYN-queue model sets its own.
	Target int64
	// Somaxconn is net.core.somaxconn, 0 when the bundle lacks it.
	// RaiseSomaxconn is true when it would clamp Target; SomaxconnOldDefault
	// when the kernel is before 5.4 and somaxconn is at most its old
	// default, 128.
	Somaxconn           int64
	RaiseSomaxconn      bool
	SomaxconnOldDefault bool
	// Limit is what set the backlog in force; App the listener's server
	// and its setting, nil when its comm is not a known server.
	Limit BacklogLimit
	App   *AppBacklog
	// RaiseMaxSynBacklog is true on kernels before 4.4, where
	// reqsk_queue_alloc() sized the SYN queue from min(backlog,
	// tcp_max_syn_backlog), and tcp_max_syn_backlog is below Target (or
	// unknown).
	RaiseMaxSynBacklog bool
}

// adviseBacklog decides the listen backlog for l (nil: a listener the
// bundle does not name).
func adviseBacklog(s *Snapshot, l *ListenerState) BacklogAdvice {
	var sendQ uint32
	if l != nil {
		sendQ = l.SendQ
	}
	return adviseBacklogTo(s, l, targetBacklog(sendQ))
}

// adviseBacklogTo is adviseBacklog with the target given.
func adviseBacklogTo(s *Snapshot, l *ListenerState, target int64) BacklogAdvice {
	a := BacklogAdvice{Listener: l, Target: target}
	if somax, ok := s.Sysctls.Int("net.core.somaxconn"); ok {
		a.Somaxconn = somax
		a.RaiseSomaxconn = somax < a.Target
		a.SomaxconnOldDefault = !s.Kernel.AtLeast(5, 4, 0) && somax <= 128
		if l != nil {
			switch q := int64(l.SendQ); {
			case q == somax:
				a.Limit = LimitSomaxconn
			case q < somax:
				a.Limit = LimitApplication
			default:
				a.Limit = LimitSomaxconnLowered
			}
		}
	}
	if l != nil {
		a.App = appBacklogFor(l.Comm)
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
		if a.Limit == LimitSomaxconn {
			w = fmt.Sprintf("the listener's backlog in force (Send-Q %d) is somaxconn: the application asked for at least that much "+
				"and the kernel clamped it, so raising the application's backlog alone changes nothing; "+
				"somaxconn applies only at listen(), so restart or reload the application afterwards", a.Somaxconn)
		}
		if a.SomaxconnOldDefault {
			w = fmt.Sprintf("on kernels before 5.4 somaxconn defaults to 128, too small for a busy server; "+
				"it caps every listen() backlog (now %d) and takes effect only when the application calls listen() again", a.Somaxconn)
		}
		recs = append(recs, sysctlRec(s, "net.core.somaxconn", target, w))
	}
	if a.RaiseMaxSynBacklog {
		recs = append(recs, sysctlRec(s, "net.ipv4.tcp_max_syn_backlog", target,
			fmt.Sprintf("on kernel %s (before 4.4) the SYN queue was min(backlog, tcp_max_syn_backlog), at least 8, "+
				"plus one rounded up to a power of two: tcp_max_syn_backlog caps it together with the listen backlog", s.Kernel)))
	}
	return append(recs, a.appRecommendation(why))
}

// appRecommendation is the application's side of the advice: its listen()
// backlog to Target (key listen.backlog), where its server sets it, and the
// restart or reload that makes it call listen() again.
func (a BacklogAdvice) appRecommendation(why string) Recommendation {
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
	setting := "its own setting: nginx 'listen ... backlog=', HAProxy 'backlog', Envoy 'tcp_backlog_size', " +
		"Java ServerSocket backlog or Tomcat acceptCount, Python socketserver request_queue_size, Node server.listen() backlog; " +
		"Go's net.Listen asks for somaxconn"
	if a.App != nil {
		setting = fmt.Sprintf("%s: %s", a.App.Server, a.App.Setting)
	}
	var limit string
	switch a.Limit {
	case LimitApplication:
		limit = fmt.Sprintf("Its own backlog is the limit (Send-Q %d, below somaxconn %d). ", a.Listener.SendQ, a.Somaxconn)
	case LimitSomaxconn:
		limit = fmt.Sprintf("somaxconn (%d) is the limit in force; make sure the application also asks for at least %d. ", a.Somaxconn, a.Target)
	case LimitSomaxconnLowered:
		limit = fmt.Sprintf("somaxconn (%d) was lowered after this listen() call (Send-Q %d): a re-listen would shrink the queue unless somaxconn is raised first. ",
			a.Somaxconn, a.Listener.SendQ)
	}
	r := note("app", fmt.Sprintf("raise %s's listen() backlog on %s%s to %d (%s) and restart or reload it so it calls listen() again. %s%s",
		who, where, cur, a.Target, setting, limit, why))
	r.Key = KeyListenBacklog
	r.Value = strconv.FormatInt(a.Target, 10)
	if a.Listener != nil {
		r.Current = strconv.FormatUint(uint64(a.Listener.SendQ), 10)
	}
	return r
}

// shortList renders at most n items of a list, with the count of the rest.
func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
