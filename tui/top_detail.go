package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/snapdiag/snapdiag/internal/safetext"
)

// topHost is the host's listen-path counters per second, one line above the
// listeners: the drops no single listener may show (a listener that
// closed, a kernel without per-socket drops) show here.
type topHost struct {
	known bool
	// rates are per second between the last two readings, in topCounters
	// order.
	rates [5]float64
	drops series
	spark []float64
}

// topCounters are the counters the line shows: the kernel's names, and
// short ones for a narrow window.
var topCounters = [...]struct{ name, short string }{
	{"ListenDrops", "drops"}, {"ListenOverflows", "overflows"}, {"ReqQFullDrop", "reqqfull"},
	{"ReqQFullDoCookies", "docookies"}, {"SyncookiesSent", "cookies"},
}

func (h *topHost) apply(prev, r TopReading, hasPrev bool, dt float64) {
	if !hasPrev || dt <= 0 || prev.CountersErr != nil || r.CountersErr != nil {
		h.known = false
		return
	}
	a, b := prev.Counters, r.Counters
	for i, d := range [...]int64{
		b.ListenDrops - a.ListenDrops, b.ListenOverflows - a.ListenOverflows, b.ReqQFullDrop - a.ReqQFullDrop,
		b.ReqQFullDoCookies - a.ReqQFullDoCookies, b.SyncookiesSent - a.SyncookiesSent,
	} {
		h.rates[i] = float64(max(d, 0)) / dt
	}
	h.known = true
	h.drops.add(h.rates[0])
}

// line is the counters line in w cells.
func (h *topHost) line(ctx *Context, w int) string {
	st := ctx.Styles
	if !h.known {
		return st.Muted.Render("host: counters per second after the second reading")
	}
	var line string
	for _, short := range []bool{false, true} {
		parts := []string{"host/s"}
		for i, c := range topCounters {
			name := c.name
			if short {
				name = c.short
			}
			s := name + " " + rate(h.rates[i])
			if h.rates[i] > 0 {
				s = st.Warning.Render(s)
			}
			parts = append(parts, s)
		}
		if line = strings.Join(parts, " · "); ansi.StringWidth(line) <= w {
			break
		}
	}
	h.spark = h.drops.values(h.spark)
	if room := w - ansi.StringWidth(line) - 3; room >= 8 {
		line += " " + sparkline(h.spark, 0, room)
	}
	return line
}

// topDetail is one listener's half-open sources: its SYN-RECV request
// sockets grouped by remote address, the most first.
type topDetail struct {
	ctx  *Context
	row  *topRow
	list *table
	h    TopHalfOpen
	err  error
	read bool
	// gone is set when the listener left the readings.
	gone          bool
	width, height int
}

func newTopDetail(ctx *Context, row *topRow) *topDetail {
	d := &topDetail{ctx: ctx, row: row}
	d.list = newTable(ctx, []column{
		{title: "SOURCE", width: 24, flex: 1, addr: true},
		{title: "REQUESTS", width: 8, right: true},
		{title: "SHARE", width: 5, right: true},
		{title: "SYN-ACK RETRANS", width: 15, right: true},
	})
	d.list.cell = d.cell
	d.list.empty = "reading the socket table…"
	return d
}

func (d *topDetail) set(h TopHalfOpen, err error) {
	d.h, d.err, d.read = h, err, true
	for i := range h.Sources {
		d.h.Sources[i].Addr = safetext.Line(h.Sources[i].Addr)
	}
	switch {
	case isGone(err):
		d.gone = true
		d.list.empty = "This listener is gone."
	case err != nil:
		d.list.empty = "The socket table could not be read: " + err.Error()
	default:
		d.list.empty = "No half-open request for this listener now."
	}
	d.list.setRows(len(d.h.Sources))
}

func (d *topDetail) cell(r, c int) string {
	s := d.h.Sources[r]
	switch c {
	case 0:
		return s.Addr
	case 1:
		return strconv.Itoa(s.Requests)
	case 2:
		return fmt.Sprintf("%.0f%%", 100*float64(s.Requests)/float64(max(d.h.Total, 1)))
	}
	return strconv.Itoa(s.MaxRetrans)
}

// header is the lines above the sources table.
const topDetailHeader = 3

func (d *topDetail) setSize(w, h int) {
	d.width, d.height = w, h
	d.list.setSize(w, max(h-topDetailHeader, 1))
}

func (d *topDetail) view() string {
	st := d.ctx.Styles
	l := &d.row.l
	title := fmt.Sprintf("Half-open sources of %s · %s", l.Local, processCell(l.Comm, l.PID, 0))
	if d.gone {
		title += " · gone"
	}
	summary := fmt.Sprintf("SYN-RECV %d · backlog %d · accept queue %d", l.SynRecv, l.SendQ, l.RecvQ)
	if d.read && d.err == nil {
		summary += fmt.Sprintf(" · %d requests from %d sources", d.h.Total, len(d.h.Sources))
		if d.h.Others > 0 {
			summary += fmt.Sprintf(" (and %d from sources not listed)", d.h.Others)
		}
	}
	lines := []string{
		st.Title.Render(fit(title, d.width)),
		st.Muted.Render(fit(summary, d.width)),
		"",
	}
	return strings.Join(lines, "\n") + "\n" + d.list.View()
}
