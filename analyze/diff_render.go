package analyze

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/snapdiag/snapdiag/internal/safetext"
)

// RenderDiffJSON writes d as one line of JSON (snapdiag.diff/v1).
func RenderDiffJSON(w io.Writer, d *Diff) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode diff: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// RenderDiffText writes d for a person: the two bundles, then each section
// that has a difference. Strings from the bundles (host names, process
// names, sysctl values) are shown with control characters made visible.
func RenderDiffText(w io.Writer, d *Diff, opt TextOptions) error {
	d = safetext.Strings(d, safetext.Line)
	bw := bufio.NewWriter(w)
	c := func(code, s string) string {
		if !opt.Color {
			return s
		}
		return code + s + ansiReset
	}
	side := func(name string, s DiffSide) {
		meta := []string{s.Path}
		if s.Host != "" {
			meta = append(meta, "host "+s.Host)
		}
		meta = append(meta, "kernel "+cmpOr(s.Kernel, "unknown"))
		if s.CapturedAt != "" {
			meta = append(meta, s.CapturedAt)
		}
		meta = append(meta, fmt.Sprintf("%s over %ss", count(s.Samples, "sample", "samples"), num(s.WindowSeconds)))
		if s.Damaged {
			meta = append(meta, c(ansiYellow, "DAMAGED: compared as far as it goes"))
		}
		fmt.Fprintf(bw, "%s %s\n", c(ansiBold, name), strings.Join(meta, " · "))
		fmt.Fprintf(bw, "  %s\n", s.Verdict)
	}
	side("A", d.A)
	side("B", d.B)
	section := func(title string) {
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, c(ansiBold, title))
	}
	if d.Host != nil || d.Kernel != nil {
		section("Host")
		if d.Host != nil {
			fmt.Fprintf(bw, "  host    %s -> %s\n", d.Host.A, d.Host.B)
		}
		if d.Kernel != nil {
			fmt.Fprintf(bw, "  kernel  %s -> %s\n", cmpOr(d.Kernel.A, "unknown"), cmpOr(d.Kernel.B, "unknown"))
		}
	}
	section("Findings")
	if len(d.Findings) == 0 {
		fmt.Fprintln(bw, "  none appeared or went away")
	}
	for _, f := range d.Findings {
		mark, col := "+", ansiRed
		switch f.Change {
		case FindingGone:
			mark, col = "-", ansiCyan
		case FindingSeverity:
			mark, col = "~", ansiYellow
		}
		sev := strings.ToUpper(f.Severity.String())
		if f.From != nil {
			sev = strings.ToUpper(f.From.String()) + " -> " + sev
		}
		where := f.ID
		if f.Listener != "" {
			where += " · listener " + f.Listener
		}
		if f.Key != "" {
			where += " · " + f.Key
		}
		fmt.Fprintf(bw, "  %s %s %s [%s] %s\n", c(col, mark), f.Change, where, sev, namespaceLabel(f.NetNS)+f.Title)
	}
	section("Sysctls")
	writeSysctls(bw, "  ", d.Sysctls)
	section("Listeners")
	writeListeners(bw, "  ", d.Listeners)
	section("Counter rates (per second)")
	writeRates(bw, "  ", d.Counters)
	if len(d.Namespaces) > 0 {
		section("Namespaces (matched by inode)")
	}
	for _, n := range d.Namespaces {
		switch n.Only {
		case "a":
			fmt.Fprintf(bw, "  %s: only in A\n", n.NetNS.String())
			continue
		case "b":
			fmt.Fprintf(bw, "  %s: only in B\n", n.NetNS.String())
			continue
		}
		fmt.Fprintf(bw, "  %s\n", n.NetNS.String())
		if len(n.Sysctls) > 0 {
			fmt.Fprintln(bw, "    Sysctls")
			writeSysctls(bw, "      ", n.Sysctls)
		}
		if len(n.Listeners) > 0 {
			fmt.Fprintln(bw, "    Listeners")
			writeListeners(bw, "      ", n.Listeners)
		}
		if len(n.Counters) > 0 {
			fmt.Fprintln(bw, "    Counter rates (per second)")
			writeRates(bw, "      ", n.Counters)
		}
	}
	if len(d.Gaps) > 0 {
		section("Gaps (what the diff could not see)")
		for _, g := range d.Gaps {
			fmt.Fprintf(bw, "  %s %s: %s\n", strings.ToUpper(g.Bundle), g.Path, g.Error)
		}
	}
	return bw.Flush()
}

func writeSysctls(w io.Writer, in string, ss []SysctlChange) {
	if len(ss) == 0 {
		fmt.Fprintln(w, in+"no difference")
	}
	for _, s := range ss {
		fmt.Fprintf(w, "%s%s  %s -> %s\n", in, s.Key, strPtr(s.A), strPtr(s.B))
	}
}

func writeListeners(w io.Writer, in string, ls []ListenerChange) {
	if len(ls) == 0 {
		fmt.Fprintln(w, in+"no difference")
	}
	for _, l := range ls {
		switch {
		case l.B == nil:
			fmt.Fprintf(w, "%s%s  only in A: %s\n", in, l.Listener, listenerLine(l.A))
			continue
		case l.A == nil:
			fmt.Fprintf(w, "%s%s  only in B: %s\n", in, l.Listener, listenerLine(l.B))
			continue
		}
		fmt.Fprintf(w, "%s%s\n", in, l.Listener)
		for _, f := range l.Changed {
			var va, vb string
			switch f {
			case "backlog":
				va, vb = fmt.Sprint(l.A.Backlog), fmt.Sprint(l.B.Backlog)
			case "accept_queue_max":
				va, vb = fmt.Sprint(l.A.AcceptQueue), fmt.Sprint(l.B.AcceptQueue)
			case "syn_recv_max":
				va, vb = fmt.Sprint(l.A.SynRecv), fmt.Sprint(l.B.SynRecv)
			case "drops_per_second":
				va, vb = ratePtr(l.A.DropsPerSecond), ratePtr(l.B.DropsPerSecond)
			case "process":
				va, vb = processName(l.A.Process), processName(l.B.Process)
			}
			fmt.Fprintf(w, "%s  %-17s %s -> %s\n", in, f, va, vb)
		}
	}
}

func writeRates(w io.Writer, in string, rs []CounterRate) {
	if len(rs) == 0 {
		fmt.Fprintln(w, in+"no listen-path counter moved in either")
	}
	for _, r := range rs {
		line := fmt.Sprintf("%s%-28s %s -> %s", in, r.Counter, ratePtr(r.A), ratePtr(r.B))
		if r.Ratio != nil {
			line += fmt.Sprintf("  (x%s)", num(*r.Ratio))
		}
		fmt.Fprintln(w, line)
	}
}

func listenerLine(l *ListenerSide) string {
	s := fmt.Sprintf("backlog %d, accept queue max %d, SYN-RECV max %d, drops/s %s", l.Backlog, l.AcceptQueue, l.SynRecv, ratePtr(l.DropsPerSecond))
	if l.Process != nil {
		s += ", " + processName(l.Process)
	}
	return s
}

func processName(p *Process) string {
	if p == nil {
		return "unknown"
	}
	return fmt.Sprintf("%s (pid %d)", p.Comm, p.PID)
}

func strPtr(s *string) string {
	if s == nil {
		return "(absent)"
	}
	return *s
}

func ratePtr(f *float64) string {
	if f == nil {
		return "?"
	}
	return num(*f)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
