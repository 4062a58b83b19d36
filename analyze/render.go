package analyze

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/internal/safetext"
)

// TextOptions control the text renderer.
type TextOptions struct {
	// Color adds ANSI colours; the caller decides (terminal, NO_COLOR).
	Color bool
	// Width wraps prose; 80 when 0.
	Width int
}

// RenderJSON writes r as one line of JSON.
func RenderJSON(w io.Writer, r *Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiDim    = "\x1b[2m"
)

// RenderText writes r for a person at a terminal: a one-line verdict, then
// the findings by severity with their evidence and actions. Every string of
// the report is shown with its control characters made visible
// (safetext.Line): a bundle's reason, host name, process names and kernel
// log lines are untrusted and must not drive the terminal.
func RenderText(w io.Writer, r *Report, opt TextOptions) error {
	r = safetext.Strings(r, safetext.Line)
	width := opt.Width
	if width <= 0 {
		width = 80
	}
	bw := bufio.NewWriter(w)
	c := func(code, s string) string {
		if !opt.Color {
			return s
		}
		return code + s + ansiReset
	}
	sevColor := func(s Severity) string {
		switch s {
		case Critical:
			return ansiBold + ansiRed
		case Warning:
			return ansiYellow
		}
		return ansiCyan
	}
	worst, _ := r.Worst()
	head := r.Verdict
	if len(r.Findings) > 0 && worst > Info {
		head = c(sevColor(worst), head)
	} else {
		head = c(ansiBold, head)
	}
	fmt.Fprintln(bw, head)
	meta := []string{}
	if r.Bundle.Path != "" {
		meta = append(meta, r.Bundle.Path)
	}
	if r.Bundle.Host != "" {
		meta = append(meta, "host "+r.Bundle.Host)
	}
	if r.Bundle.NamesNetNS() {
		meta = append(meta, r.Bundle.NetNS.String())
	}
	meta = append(meta, "kernel "+r.Bundle.Kernel)
	if r.Bundle.CapturedAt != "" {
		meta = append(meta, r.Bundle.CapturedAt)
	}
	if r.Bundle.Reason != "" {
		meta = append(meta, "reason: "+r.Bundle.Reason)
	}
	if c := r.Bundle.CaptureCost; c != nil {
		meta = append(meta, c.Summary())
	}
	writeWrapped(bw, strings.Join(meta, " · "), width, "", "")
	if tl := r.TimelineSummary(); len(tl) > 0 {
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, c(ansiBold, "Timeline"))
		for _, line := range tl {
			writeWrapped(bw, line, width, "  ", "    ")
		}
	}
	for _, f := range r.Findings {
		fmt.Fprintln(bw)
		label := fmt.Sprintf("[%s] ", strings.ToUpper(f.Severity.String()))
		writeWrapped(bw, f.Title, width, c(sevColor(f.Severity), label), strings.Repeat(" ", len(label)))
		id := "    id " + f.ID
		if f.Listener != "" {
			id += " · listener " + f.Listener
		}
		if f.Process != nil {
			id += fmt.Sprintf(" · %s (pid %d)", f.Process.Comm, f.Process.PID)
		}
		if f.Key != "" {
			id += " · " + f.Key
		}
		fmt.Fprintln(bw, c(ansiDim, id))
		if f.Summary != "" {
			writeWrapped(bw, f.Summary, width, "    ", "    ")
		}
		if len(f.Evidence) > 0 {
			fmt.Fprintln(bw, "    Evidence:")
			for _, e := range f.Evidence {
				writeWrapped(bw, evidenceLine(e), width, "    - ", "      ")
			}
		}
		if len(f.Recommendations) > 0 {
			fmt.Fprintln(bw, "    Do:")
			for _, rec := range f.Recommendations {
				writeWrapped(bw, recLine(rec), width, "    * ", "      ")
				for _, cmd := range rec.Commands {
					fmt.Fprintln(bw, "        "+c(ansiBold, "$ "+cmd))
				}
				if rec.Persist != "" {
					fmt.Fprintln(bw, "        persist: "+rec.Persist)
				}
			}
		}
	}
	return bw.Flush()
}

func evidenceLine(e Evidence) string {
	var b strings.Builder
	b.WriteString(e.Metric)
	if e.Metric != "kernel log" {
		b.WriteString(" = " + num(e.Value))
		if e.Delta != 0 || e.PerSecond != 0 {
			b.WriteString(fmt.Sprintf(" (+%s", num(e.Delta)))
			if e.PerSecond != 0 {
				b.WriteString(fmt.Sprintf(", %s/s", num(e.PerSecond)))
			}
			b.WriteString(")")
		}
	}
	if e.Note != "" {
		if e.Metric == "kernel log" {
			b.WriteString(": ")
		} else {
			b.WriteString(" — ")
		}
		b.WriteString(e.Note)
	}
	if e.Source != "" {
		b.WriteString(" [" + e.Source + "]")
	}
	return b.String()
}

func recLine(r Recommendation) string {
	plan := ""
	if r.Plan == PlanWithoutCookies {
		plan = "[if cookies stay off] "
	}
	if r.Action == "sysctl" {
		cur := r.Current
		if cur == "" {
			cur = "unset"
		}
		return fmt.Sprintf("%sset %s from %s to %s: %s", plan, r.Key, cur, r.Value, r.Why)
	}
	return plan + r.Why
}

func num(f float64) string {
	if f == float64(int64(f)) {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

// writeWrapped writes text wrapped at width, the first line after first and
// the others after indent. Words longer than a line are not broken.
func writeWrapped(w io.Writer, text string, width int, first, indent string) {
	words := strings.Fields(text)
	line := first
	lineLen := visibleLen(first)
	empty := true
	for _, word := range words {
		if !empty && lineLen+1+len(word) > width {
			fmt.Fprintln(w, line)
			line, lineLen, empty = indent, len(indent), true
		}
		if !empty {
			line += " "
			lineLen++
		}
		line += word
		lineLen += len([]rune(word))
		empty = false
	}
	fmt.Fprintln(w, line)
}

// visibleLen is the length of s without ANSI escape sequences.
func visibleLen(s string) int {
	n, esc := 0, false
	for _, r := range s {
		switch {
		case r == 0x1b:
			esc = true
		case esc && r == 'm':
			esc = false
		case !esc:
			n++
		}
	}
	return n
}

// RenderMarkdown writes r for an incident ticket. As in RenderText, control
// characters are made visible; markdown's own syntax in a string is escaped
// (mdEscape, mdCode), so a process name cannot end a code span or a table
// cell, or add a link.
func RenderMarkdown(w io.Writer, r *Report) error {
	r = safetext.Strings(r, safetext.Line)
	bw := bufio.NewWriter(w)
	name := r.Bundle.Path
	if name == "" {
		name = "bundle"
	}
	fmt.Fprintf(bw, "## snapdiag: %s\n\n", mdEscape(name))
	fmt.Fprintf(bw, "**%s**\n\n", mdEscape(r.Verdict))
	if r.Bundle.NamesNetNS() {
		fmt.Fprintf(bw, "| host | network namespace | kernel | captured | reason |\n|---|---|---|---|---|\n| %s | %s | %s | %s | %s |\n\n",
			mdCell(r.Bundle.Host), mdCell(r.Bundle.NetNS.String()), mdCell(r.Bundle.Kernel), mdCell(r.Bundle.CapturedAt), mdCell(r.Bundle.Reason))
	} else {
		fmt.Fprintf(bw, "| host | kernel | captured | reason |\n|---|---|---|---|\n| %s | %s | %s | %s |\n\n",
			mdCell(r.Bundle.Host), mdCell(r.Bundle.Kernel), mdCell(r.Bundle.CapturedAt), mdCell(r.Bundle.Reason))
	}
	if tl := r.TimelineSummary(); len(tl) > 0 {
		fmt.Fprintf(bw, "**Timeline**\n\n")
		for _, line := range tl {
			fmt.Fprintf(bw, "- %s\n", mdEscape(line))
		}
		fmt.Fprintln(bw)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(bw, "### %s %s\n\n", strings.ToUpper(f.Severity.String()), mdEscape(f.Title))
		var meta []string
		meta = append(meta, mdCode(f.ID))
		if f.Listener != "" {
			meta = append(meta, "listener "+mdCode(f.Listener))
		}
		if f.Process != nil {
			meta = append(meta, fmt.Sprintf("process %s (pid %d)", mdCode(f.Process.Comm), f.Process.PID))
		}
		if f.Key != "" {
			meta = append(meta, mdCode(f.Key))
		}
		fmt.Fprintf(bw, "%s\n\n", strings.Join(meta, " · "))
		if f.Summary != "" {
			fmt.Fprintf(bw, "%s\n\n", mdEscape(f.Summary))
		}
		if len(f.Evidence) > 0 {
			fmt.Fprintf(bw, "| evidence | value | Δ | per s | note | source |\n|---|---:|---:|---:|---|---|\n")
			for _, e := range f.Evidence {
				fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s |\n", mdCell(e.Metric), num(e.Value), num(e.Delta), num(e.PerSecond), mdCell(e.Note), mdCell(e.Source))
			}
			fmt.Fprintln(bw)
		}
		if len(f.Recommendations) > 0 {
			fmt.Fprintln(bw, "**Remedy**")
			fmt.Fprintln(bw)
			for _, rec := range f.Recommendations {
				fmt.Fprintf(bw, "- %s\n", mdEscape(recLine(rec)))
				if len(rec.Commands) > 0 || rec.Persist != "" {
					fence := mdFence(append([]string{rec.Persist}, rec.Commands...))
					fmt.Fprintf(bw, "\n  %ssh\n", fence)
					for _, c := range rec.Commands {
						fmt.Fprintf(bw, "  %s\n", c)
					}
					if rec.Persist != "" {
						fmt.Fprintf(bw, "  # persist: %s\n", rec.Persist)
					}
					fmt.Fprintf(bw, "  %s\n", fence)
				}
			}
			fmt.Fprintln(bw)
		}
	}
	if len(r.Findings) == 0 {
		fmt.Fprintln(bw, "No findings.")
		fmt.Fprintln(bw)
	}
	return bw.Flush()
}

// mdEscaper escapes what markdown would read as syntax in running text: the
// backslash first of all, emphasis, code, HTML, links and table cells.
var mdEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;", ">", "&gt;",
	"|", `\|`, "[", `\[`, "]", `\]`)

func mdEscape(s string) string { return mdEscaper.Replace(s) }

// mdCode is s as an inline code span. Inside a code span nothing is
// escaped, so the span is delimited by a run of backticks longer than any
// run in s (with spaces, which markdown strips, when s starts or ends with
// one). Code spans are kept out of tables, where a | would end the cell.
func mdCode(s string) string {
	ticks := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return ticks + s + ticks
}

// mdFence is the fence of a code block holding lines: three backticks, or
// more when a line holds a run of three or more.
func mdFence(lines []string) string {
	n := 3
	for _, l := range lines {
		n = max(n, longestRun(l, '`')+1)
	}
	return strings.Repeat("`", n)
}

// longestRun is the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	best, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

func mdCell(s string) string {
	return strings.ReplaceAll(mdEscape(s), "\n", " ")
}
