package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// RenderJSON writes rep as one JSON document (snapdiag.fleet/v1).
func RenderJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// table is a report section as rows of cells, rendered as aligned text or
// a markdown table. Every cell comes from a key segment made safe
// (ship.HostSegment), a finding id, a number or a date: none holds a
// control character or a '|'.
type table struct {
	title string
	head  []string
	rows  [][]string
}

func (rep *Report) tables() []table {
	grid := table{title: "Incidents per host and UTC day (worst finding; incidents/bundles)", head: append([]string{"host"}, rep.Days...)}
	for _, h := range rep.Hosts {
		row := []string{h.Host}
		cells := map[string]DayCell{}
		for _, c := range h.Days {
			cells[c.Day] = c
		}
		for _, d := range rep.Days {
			if c, ok := cells[d]; ok {
				row = append(row, fmt.Sprintf("%s %d/%d", c.Worst, c.Incidents, c.Bundles))
			} else {
				row = append(row, "-")
			}
		}
		grid.rows = append(grid.rows, row)
	}
	rec := table{title: "Findings that recur across the fleet", head: []string{"finding", "worst", "bundles", "hosts"}}
	for _, r := range rep.Recurring {
		rec.rows = append(rec.rows, []string{r.ID, r.Worst, fmt.Sprint(r.Bundles), strings.Join(r.Hosts, " ")})
	}
	src := table{title: "Half-open client sources of SYN-queue incidents", head: []string{"source", "prefix", "incidents", "hosts"}}
	for _, s := range rep.HalfOpen.Sources {
		src.rows = append(src.rows, []string{s.Addr, s.Prefix, fmt.Sprint(s.Incidents), strings.Join(s.Hosts, " ")})
	}
	prefixes := table{title: "Their /24 (IPv4) and /48 (IPv6) prefixes", head: []string{"prefix", "incidents", "sources", "hosts"}}
	for _, p := range rep.HalfOpen.ByPrefix {
		prefixes.rows = append(prefixes.rows, []string{p.Prefix, fmt.Sprint(p.Incidents), fmt.Sprint(p.Sources), strings.Join(p.Hosts, " ")})
	}
	load := table{title: "Load: accepted connections per second in each bundle", head: []string{"captured", "host", "worst", "accepted/s", "before (watch history)"}}
	for _, l := range rep.Load {
		hist := "-"
		if l.HistoryAcceptRate != nil {
			hist = fmt.Sprintf("%s over %d samples", rate(l.HistoryAcceptRate), l.HistorySamples)
		}
		load.rows = append(load.rows, []string{l.CapturedAt, l.Host, l.Worst, rate(l.AcceptRate), hist})
	}
	byHour, _, zone := rep.hourView()
	hours := table{title: "Load and incidents by hour of day (" + zone + "; * a busiest hour)", head: []string{"hour", "accepted/s", "bundles", "incidents"}}
	for _, h := range byHour {
		mark := ""
		if h.Busiest {
			mark = " *"
		}
		hours.rows = append(hours.rows, []string{fmt.Sprintf("%02d:00%s", h.Hour, mark), rate(h.AcceptRate), fmt.Sprint(h.Bundles), fmt.Sprint(h.Incidents)})
	}
	return []table{grid, rec, src, prefixes, load, hours}
}

// hourView is the hours and busiest hours the text and markdown show, in
// the report's zone (UTC unless Filter.Zone named another), and its name.
func (rep *Report) hourView() ([]HourLoad, Busiest, string) {
	if rep.Zone != "" {
		return rep.ZoneHours, rep.ZoneBusiest, rep.Zone
	}
	return rep.Hours, rep.Busiest, "UTC"
}

func rate(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *r)
}

func (rep *Report) header() []string {
	lines := []string{fmt.Sprintf("%d bundles from %d hosts in %s", rep.Bundles, len(rep.Hosts), rep.Source)}
	if len(rep.Healthy) > 0 {
		lines = append(lines, "Hosts that never failed: "+strings.Join(rep.Healthy, " "))
	}
	if rep.HalfOpen.Class != "" {
		lines = append(lines, fmt.Sprintf("Half-open clients: %s (%s)", rep.HalfOpen.Class, strings.Join(rep.HalfOpen.Evidence, "; ")))
	}
	if _, b, zone := rep.hourView(); len(b.Hours) > 0 && b.Incidents > 0 {
		hs := make([]string, len(b.Hours))
		for i, h := range b.Hours {
			hs[i] = fmt.Sprintf("%02d:00", h)
		}
		lines = append(lines, fmt.Sprintf("Busiest hours (%s) %s, of %d hours of day sampled: %d of %d incidents were captured in them",
			zone, strings.Join(hs, " "), b.Sampled, b.AtBusiest, b.Incidents))
	}
	for _, f := range rep.Failed {
		lines = append(lines, "Could not read "+safe(f.Key)+" ("+f.Kind+"): "+safe(f.Error))
	}
	return lines
}

// safe shows control characters and invalid UTF-8 of a key visibly.
func safe(s string) string {
	q := fmt.Sprintf("%+q", s)
	return q[1 : len(q)-1]
}

// RenderText writes rep as aligned text tables.
func RenderText(w io.Writer, rep *Report) error {
	var b strings.Builder
	for _, l := range rep.header() {
		b.WriteString(l + "\n")
	}
	for _, t := range rep.tables() {
		if len(t.rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s\n", t.title)
		width := make([]int, len(t.head))
		for _, r := range append([][]string{t.head}, t.rows...) {
			for i, c := range r {
				width[i] = max(width[i], len(c))
			}
		}
		for _, r := range append([][]string{t.head}, t.rows...) {
			for i, c := range r {
				fmt.Fprintf(&b, "  %-*s", width[i], c)
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// RenderMarkdown writes rep as markdown tables.
func RenderMarkdown(w io.Writer, rep *Report) error {
	var b strings.Builder
	b.WriteString("# Fleet report\n\n")
	for _, l := range rep.header() {
		b.WriteString("- " + strings.ReplaceAll(l, "|", `\|`) + "\n")
	}
	for _, t := range rep.tables() {
		if len(t.rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n| %s |\n|%s\n", t.title, strings.Join(t.head, " | "), strings.Repeat(" --- |", len(t.head)))
		for _, r := range t.rows {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(r, " | "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
