package analyze

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// Schema is the report schema this package writes.
const Schema = "snapdiag.report/v1"

// Report is the analysis of one bundle (schema snapdiag.report/v1, plus the
// additive fields verdict, timeline, kernel_semantics and gaps).
type Report struct {
	Schema     string            `json:"schema"`
	Bundle     BundleInfo        `json:"bundle"`
	Verdict    string            `json:"verdict"`
	Findings   []Finding         `json:"findings"`
	Collectors []CollectorReport `json:"collectors"`
	Timeline   []TimelineEntry   `json:"timeline,omitempty"`
}

// BundleInfo identifies the bundle a report is about.
type BundleInfo struct {
	Path       string `json:"path"`
	Host       string `json:"host"`
	Kernel     string `json:"kernel"`
	CapturedAt string `json:"captured_at"`
	Reason     string `json:"reason"`
	// Samples and WindowSeconds say how much time the counters cover.
	Samples       int     `json:"samples"`
	WindowSeconds float64 `json:"window_seconds"`
	// History is how many of the first samples the watchdog took before the
	// capture (snapdiag watch --history); they show when trouble began.
	History int `json:"history_samples,omitempty"`
	// CaptureCost is what the capture cost the host (its CPU time, peak
	// memory and priority), as the manifest records it; nil for bundles
	// written before it was recorded.
	CaptureCost *bundle.Cost `json:"capture_cost,omitempty"`
	// NetNS is the network namespace the capture read and who owns it, as
	// the manifest records it; nil for bundles written before it was.
	NetNS *bundle.NetNS `json:"netns,omitempty"`
}

// NamesNetNS reports whether the report's header names the namespace: when
// the capture was pointed at one, or ran in a namespace other than the
// host's (a sidecar). A capture of the host's own is the default, and
// saying so on every report would be noise.
func (b BundleInfo) NamesNetNS() bool {
	n := b.NetNS
	return n != nil && (n.NamedBy != bundle.NamedBySelf || !n.HostNS)
}

// CollectorReport is one collector's status as the manifest records it.
type CollectorReport struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// TimelineEntry is one moment of the capture: an interval between samples
// with the listen-path counters that moved in it, or a kernel log line.
type TimelineEntry struct {
	At     string `json:"at"`
	Offset string `json:"offset,omitempty"`
	Event  string `json:"event"`
	// From and To are the indexes of the samples the interval lies between.
	From int `json:"from_sample"`
	To   int `json:"to_sample"`
}

// Analyze runs rules over s and builds the report. path is the bundle's
// path as the user named it.
func Analyze(s *Snapshot, path string, rules []Rule) *Report {
	r := &Report{Schema: Schema, Findings: RunRules(s, rules), Collectors: []CollectorReport{}}
	r.Bundle = BundleInfo{Path: path, Kernel: s.Kernel.String(), Samples: len(s.Samples), WindowSeconds: round2(s.Window())}
	if !s.Kernel.Known() && s.Kernel.Release != "" {
		r.Bundle.Kernel = s.Kernel.Release
	}
	if t := s.CapturedAt(); !t.IsZero() {
		r.Bundle.CapturedAt = t.UTC().Format(time.RFC3339)
	}
	if m := s.Manifest; m != nil {
		r.Bundle.Host = m.Host.Hostname
		r.Bundle.Reason = m.Trigger.Reason
		r.Bundle.History = m.Options.History
		r.Bundle.CaptureCost = m.Cost
		r.Bundle.NetNS = m.NetNS
		for _, c := range m.Collectors {
			r.Collectors = append(r.Collectors, CollectorReport{Name: c.Name, Status: string(c.Status), Error: c.Error})
		}
	}
	SortFindings(r.Findings)
	r.Verdict = verdict(r.Findings, s)
	r.Timeline = timeline(s)
	return r
}

// SortFindings orders findings by severity, most severe first, keeping the
// rules' order among equals.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Severity > fs[j].Severity })
}

// Worst is the highest severity among the findings, and false when there
// are none.
func (r *Report) Worst() (Severity, bool) {
	if len(r.Findings) == 0 {
		return Info, false
	}
	w := Info
	for _, f := range r.Findings {
		w = max(w, f.Severity)
	}
	return w, true
}

// Filter returns a copy of r holding only the findings at min or above.
func (r *Report) Filter(min Severity) *Report {
	c := *r
	c.Findings = []Finding{}
	for _, f := range r.Findings {
		if f.Severity >= min {
			c.Findings = append(c.Findings, f)
		}
	}
	return &c
}

// Exit codes of analyze: 0 nothing above info, 3 a warning, 4 critical
// (1 and 2, errors and usage, belong to the command).
const (
	ExitOK       = 0
	ExitWarning  = 3
	ExitCritical = 4
)

// ExitCode is analyze's exit code for reports: 0 when nothing is above
// info, 3 when the worst finding is a warning, 4 when it is critical.
func ExitCode(reports ...*Report) int {
	code := ExitOK
	for _, r := range reports {
		w, ok := r.Worst()
		switch {
		case !ok:
		case w == Critical:
			code = ExitCritical
		case w == Warning && code < ExitWarning:
			code = ExitWarning
		}
	}
	return code
}

func verdict(fs []Finding, s *Snapshot) string {
	var serious []Finding
	for _, f := range fs {
		if f.Severity >= Warning {
			serious = append(serious, f)
		}
	}
	if len(serious) == 0 {
		if len(s.Samples) < 2 {
			return "No problem found in the state at capture time (no counter deltas: fewer than two samples)."
		}
		return fmt.Sprintf("No listen-path problem during the capture (%s %s).", count(len(s.Samples), "sample", "samples"), window(s))
	}
	v := strings.ToUpper(serious[0].Severity.String()) + ": " + serious[0].Title
	if n := len(serious) - 1; n > 0 {
		v += fmt.Sprintf(" (+%d more)", n)
	}
	return v
}

// timeline lists per-interval movements of the listen-path counters, at
// most 50 intervals (the busiest, in time order).
func timeline(s *Snapshot) []TimelineEntry {
	timelineMetrics := []Counter{
		tcpExtTCPReqQFullDrop, tcpExtTCPReqQFullDoCookies, tcpExtListenOverflows, tcpExtListenDrops,
		tcpExtSyncookiesSent, tcpExtSyncookiesRecv, tcpExtTCPSynRetrans, tcpPassiveOpens,
		tcpExtTCPTimeWaitOverflow, softnetDropped, conntrackDrop,
	}
	type iv struct {
		i     int
		score int64
		text  string
	}
	var ivs []iv
	for i := 1; i < len(s.Samples); i++ {
		a, b := &s.Samples[i-1], &s.Samples[i]
		var parts []string
		var score int64
		for _, m := range timelineMetrics {
			va, ok1 := a.Values[m]
			vb, ok2 := b.Values[m]
			if ok1 && ok2 && vb > va {
				parts = append(parts, fmt.Sprintf("%s +%d", m, vb-va))
				if m != tcpPassiveOpens {
					score += vb - va
				}
			}
		}
		if score == 0 {
			continue
		}
		ivs = append(ivs, iv{i, score, strings.Join(parts, ", ")})
	}
	if len(ivs) > 50 {
		sort.SliceStable(ivs, func(x, y int) bool { return ivs[x].score > ivs[y].score })
		ivs = ivs[:50]
		sort.Slice(ivs, func(x, y int) bool { return ivs[x].i < ivs[y].i })
	}
	var out []TimelineEntry
	for _, x := range ivs {
		from, to := s.Samples[x.i-1].Index, s.Samples[x.i].Index
		e := TimelineEntry{Event: fmt.Sprintf("samples %03d-%03d: %s", from, to, x.text), From: from, To: to}
		if t := s.Samples[x.i].Time; t != nil {
			e.At = t.Wall
		}
		if sec := s.seconds(0, x.i); sec > 0 {
			e.Offset = fmt.Sprintf("+%.1fs", sec)
		}
		out = append(out, e)
	}
	return out
}

// timelineShown bounds the timeline in the text and markdown reports; JSON
// carries all of it.
const timelineShown = 8

// TimelineSummary is the timeline as a person reads it: when the trouble
// began (with watchdog history, the quiet samples before it), then the first
// intervals in which listen-path counters moved.
func (r *Report) TimelineSummary() []string {
	if len(r.Timeline) == 0 {
		return nil
	}
	var out []string
	first := r.Timeline[0]
	if first.From > 0 {
		when := first.At
		if first.Offset != "" {
			when += " (" + first.Offset + " into the samples)"
		}
		line := fmt.Sprintf("Quiet in samples 000-%03d; trouble began between samples %03d and %03d, by %s.", first.From, first.From, first.To, when)
		if r.Bundle.History > 0 {
			line += fmt.Sprintf(" Samples 000-%03d are the watchdog's history before the capture.", r.Bundle.History-1)
		}
		out = append(out, line)
	}
	for i, e := range r.Timeline {
		if i == timelineShown {
			out = append(out, fmt.Sprintf("... %d more intervals in --format json", len(r.Timeline)-timelineShown))
			break
		}
		at := e.At
		if len(at) >= 19 {
			at = at[11:19] // hh:mm:ss of the RFC 3339 wall clock
		}
		out = append(out, strings.TrimSpace(at+" "+e.Offset+" "+e.Event))
	}
	return out
}
