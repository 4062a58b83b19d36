package analyze

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// AcceptRates compares what entered a listener's accept queue with what
// left it over the capture.
type AcceptRates struct {
	// OK is false when the samples cannot tell: fewer than two, no times,
	// or PassiveOpens missing.
	OK      bool
	Seconds float64
	// Entered is the connections completed into accept queues per second
	// (Tcp.PassiveOpens: tcp_create_openreq_child() counts each child it
	// queues; the namespace's, not this listener's alone). Accepted is
	// Entered less the listener's queue growth per second: what accept()
	// took off. Dropped is ListenOverflows per second: what a full queue
	// turned away (packets, so a client's retransmits count again).
	Entered, Accepted, Dropped float64
}

// Arrived is the rate at which connections came: queued or turned away.
func (r AcceptRates) Arrived() float64 { return r.Entered + r.Dropped }

// ThreadWait is a group of a process's threads in one scheduler state and
// one wait channel.
type ThreadWait struct {
	State string
	Wchan string
	TIDs  []int
	// Stack is the kernel stack of the group's first thread that has one.
	Stack []string
}

// explain fills in the owning process's side of an accept-queue overflow:
// its record, the accept and arrival rates, its threads' waits, and
// AcceptNoFiles when it holds as many descriptors as RLIMIT_NOFILE allows.
func (d *AcceptQueueOverflow) explain(s *Snapshot) {
	l := d.Listener
	if l == nil {
		return
	}
	d.Process = s.process(l.PID)
	// PassiveOpens is the namespace's: never this socket's rate when it
	// shares its port with an SO_REUSEPORT group.
	if !l.ReusePort {
		d.Rates = acceptRates(d.PassiveOpens, d.Overflows, l.RecvQs)
	}
	if d.Process == nil {
		return
	}
	d.Waits = threadWaits(d.Process.Tasks)
	if d.Process.AtFileLimit() {
		// accept() allocates the descriptor before it dequeues
		// (__sys_accept4() calls get_unused_fd_flags() first): at the limit
		// it fails with EMFILE and the connection stays queued, so the queue
		// fills whatever the application's loop does.
		d.State = AcceptNoFiles
		d.Severity = Critical
	}
}

// acceptRates computes AcceptRates from the capture's PassiveOpens and
// ListenOverflows and the listener's Recv-Q at each sample.
func acceptRates(passive, overflows Delta, recvQs []uint32) AcceptRates {
	if !passive.OK || passive.Seconds <= 0 || len(recvQs) < 2 {
		return AcceptRates{}
	}
	grew := float64(recvQs[len(recvQs)-1]) - float64(recvQs[0])
	r := AcceptRates{OK: true, Seconds: passive.Seconds, Entered: passive.PerSecond}
	r.Accepted = max(0, r.Entered-grew/passive.Seconds)
	if overflows.OK {
		r.Dropped = overflows.PerSecond
	}
	return r
}

// threadWaits groups threads by state and wait channel, largest group
// first.
func threadWaits(ts []TaskState) []ThreadWait {
	var out []ThreadWait
	for _, t := range ts {
		i := slices.IndexFunc(out, func(w ThreadWait) bool { return w.State == t.State && w.Wchan == t.Wchan })
		if i < 0 {
			i = len(out)
			out = append(out, ThreadWait{State: t.State, Wchan: t.Wchan})
		}
		out[i].TIDs = append(out[i].TIDs, t.TID)
		if out[i].Stack == nil && len(t.Stack) > 0 {
			out[i].Stack = t.Stack
		}
	}
	slices.SortStableFunc(out, func(a, b ThreadWait) int { return cmp.Compare(len(b.TIDs), len(a.TIDs)) })
	return out
}

// describeWaits spells the waits for people: "3 sleeping in futex_wait_queue, 1 running".
func describeWaits(ws []ThreadWait) string {
	parts := make([]string, 0, len(ws))
	for _, w := range ws {
		p := fmt.Sprintf("%d %s", len(w.TIDs), stateName(w.State))
		if w.Wchan != "" {
			p += " in " + w.Wchan
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

func stateName(s string) string {
	switch s {
	case "R":
		return "running"
	case "S":
		return "sleeping"
	case "D":
		return "in uninterruptible wait (D)"
	case "T", "t":
		return "stopped"
	case "Z":
		return "zombie"
	case "I":
		return "idle"
	}
	return "in state " + s
}

// whyEvidence is the process's side of the overflow as evidence.
func (d *AcceptQueueOverflow) whyEvidence() []Evidence {
	var ev []Evidence
	if r := d.Rates; r.OK {
		ev = append(ev, evValue("samples", "connections accepted per second", round2(r.Accepted),
			fmt.Sprintf("entered the accept queues %.1f/s (PassiveOpens) less the queue's growth; %.1f/s turned away (ListenOverflows)", r.Entered, r.Dropped)))
	}
	p := d.Process
	if p == nil {
		return ev
	}
	if p.OpenFiles >= 0 && p.NoFile != 0 {
		ev = append(ev, evValue(p.Source, fmt.Sprintf("process %d open files", p.PID), float64(p.OpenFiles),
			fmt.Sprintf("RLIMIT_NOFILE %s (hard %s)", limitString(p.NoFile), limitString(p.NoFileHard))))
	}
	if len(d.Waits) > 0 {
		ev = append(ev, evValue(p.Source, fmt.Sprintf("process %d threads", p.PID), float64(p.Threads), describeWaits(d.Waits)))
		for _, w := range d.Waits {
			if len(w.Stack) > 0 {
				ev = append(ev, evValue(fmt.Sprintf("proc/%d/task/%d/stack", p.PID, w.TIDs[0]), "kernel stack", float64(len(w.TIDs)),
					strings.Join(w.Stack[:min(len(w.Stack), 6)], " < ")))
			}
		}
	}
	return ev
}

// whySummary says which of stuck, too slow or out of descriptors it is,
// with the figures.
func (d *AcceptQueueOverflow) whySummary() string {
	p := d.Process
	var b strings.Builder
	switch {
	case d.State == AcceptNoFiles:
		fmt.Fprintf(&b, "Process %s (pid %d) holds %d open files, its whole RLIMIT_NOFILE of %d: every accept() fails with EMFILE "+
			"and leaves the connection in the queue, so the accept loop either spins or gives up. ", p.Comm, p.PID, p.OpenFiles, p.NoFile)
	case d.State == AcceptStuck && len(d.Waits) > 0:
		n := 0
		for _, w := range d.Waits {
			n += len(w.TIDs)
		}
		if n < p.Threads {
			fmt.Fprintf(&b, "Of its %d threads, the %d read were: %s. ", p.Threads, n, describeWaits(d.Waits))
		} else {
			fmt.Fprintf(&b, "Its %d threads were: %s. ", n, describeWaits(d.Waits))
		}
	case d.State == AcceptSlow && d.Rates.OK && d.Rates.Dropped > 0:
		fmt.Fprintf(&b, "It accepted %.1f connections/s while %.1f/s arrived (%.1f/s turned away). ", d.Rates.Accepted, d.Rates.Arrived(), d.Rates.Dropped)
	}
	return b.String()
}

// whyRecommendations are the application's remedies for the case found;
// generic is the advice when the process's side is unknown.
func (d *AcceptQueueOverflow) whyRecommendations(s *Snapshot, who string, generic Recommendation) []Recommendation {
	p := d.Process
	switch {
	case d.State == AcceptNoFiles:
		return nofileRemedies(s, p)
	case d.State == AcceptStuck && p != nil && len(d.Waits) > 0:
		return []Recommendation{note("app", fmt.Sprintf(
			"%s's threads are blocked (%s): take its user-space stacks to see on what (gdb -p %d -batch -ex 'thread apply all bt', jstack, py-spy dump), "+
				"then restart it; the fix is in the code that blocks the acceptor", who, describeWaits(d.Waits), p.PID))}
	case d.State == AcceptSlow && d.Rates.OK && d.Rates.Accepted > 0 && d.Rates.Dropped > 0:
		factor := d.Rates.Arrived() / d.Rates.Accepted
		why := fmt.Sprintf("%s accepts %.1f/s of %.1f/s arriving: it needs about %.1f times its accept capacity: add workers or threads, "+
			"keep blocking work out of the acceptor, or spread the port over SO_REUSEPORT listeners", who, d.Rates.Accepted, d.Rates.Arrived(), factor)
		if p != nil && p.Threads > 0 {
			why += fmt.Sprintf(" (it runs %d threads: about %d would keep up)", p.Threads, int(math.Ceil(float64(p.Threads)*factor)))
		}
		return []Recommendation{note("app", why)}
	}
	return []Recommendation{generic}
}

// nofileRemedies raise a process's RLIMIT_NOFILE: at once for the running
// process, and for its next start, with the number.
func nofileRemedies(s *Snapshot, p *ProcessState) []Recommendation {
	want := suggestNoFile(s, p)
	v := strconv.FormatInt(want, 10)
	// The hard limit is never lowered: raise it only where the soft limit
	// must go above it, and keep "unlimited" as it is.
	hard := v
	switch {
	case p.NoFileHard == Unlimited:
		hard = "unlimited"
	case p.NoFileHard > want:
		hard = strconv.FormatInt(p.NoFileHard, 10)
	}
	return []Recommendation{
		{Action: "limit", Key: "RLIMIT_NOFILE", Current: limitString(p.NoFile), Value: v,
			Why: fmt.Sprintf("%s (pid %d) is at its open-file limit: raise it now for the running process, then for its next start "+
				"(systemd: LimitNOFILE=%s:%s in the unit's [Service] section via systemctl edit; a shell: ulimit -n %s before it starts)",
				p.Comm, p.PID, v, hard, v),
			Commands: []string{fmt.Sprintf("prlimit --pid %d --nofile=%s:%s", p.PID, v, hard)}},
		note("app", fmt.Sprintf("find why %s holds %d descriptors: if the count keeps climbing with the connections it serves, it leaks them "+
			"(closed connections not closed), and a higher limit only buys time", p.Comm, p.OpenFiles),
			fmt.Sprintf("ls -l /proc/%d/fd", p.PID)),
	}
}

// suggestNoFile is the RLIMIT_NOFILE to recommend: four times what the
// process has, rounded up to a power of two, at least 65536, and no more
// than fs.nr_open (the most setrlimit() accepts).
func suggestNoFile(s *Snapshot, p *ProcessState) int64 {
	have := max(p.NoFile, int64(p.OpenFiles), 1)
	want := max(int64(1)<<bits.Len64(uint64(min(have, 1<<40)*4-1)), 65536)
	if nr, ok := s.Sysctls.Int("fs.nr_open"); ok && nr > 0 && want > nr {
		want = max(nr, have)
	}
	return want
}

func limitString(n int64) string {
	if n == Unlimited {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}
