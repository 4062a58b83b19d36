package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/mattn/go-runewidth"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/safetext"
)

// series is the last topHistory values of one quantity, oldest first once
// read out; float32 keeps 10,000 listeners' histories in a few megabytes.
type series struct {
	vals []float32
	next int
}

func (s *series) add(v float64) {
	if len(s.vals) < topHistory {
		s.vals = append(s.vals, float32(v))
		return
	}
	s.vals[s.next] = float32(v)
	s.next = (s.next + 1) % topHistory
}

// values appends the series to buf, oldest first.
func (s *series) values(buf []float64) []float64 {
	buf = buf[:0]
	for i := range s.vals {
		buf = append(buf, float64(s.vals[(s.next+i)%len(s.vals)]))
	}
	return buf
}

// topRow is one listener across readings.
type topRow struct {
	l bundle.Listener
	// dropRate is the socket's own drops per second between the last two
	// readings; dropsKnown is false until two readings carried them.
	dropRate   float64
	dropsKnown bool
	recvQ      series
	synRecv    series
	drops      series
}

// key identifies a listener across readings: its cookie, which the kernel
// never reuses, and its address for a source that has no cookie.
func (r *topRow) key() string { return r.l.Local + "#" + strconv.FormatUint(r.l.Cookie, 10) }

// fill is how full the fuller of the listener's queues is now, as a share
// of its backlog.
func (r *topRow) fill() float64 {
	worst := float64(max(int(r.l.RecvQ), r.l.SynRecv))
	if r.l.SendQ == 0 {
		if worst > 0 {
			return 1
		}
		return 0
	}
	return worst / float64(r.l.SendQ)
}

// worse orders rows worst first: the fuller queue, then the faster drops,
// then the longer SYN queue; the port and address keep the order stable.
func worse(a, b *topRow) int {
	return cmp.Or(cmp.Compare(b.fill(), a.fill()), cmp.Compare(b.dropRate, a.dropRate),
		cmp.Compare(b.l.SynRecv, a.l.SynRecv), cmp.Compare(a.l.Port, b.l.Port),
		strings.Compare(a.l.Local, b.l.Local), cmp.Compare(a.l.Cookie, b.l.Cookie))
}

// topList is the listeners table of snapdiag top.
type topList struct {
	ctx    *Context
	list   *table
	byKey  map[string]*topRow
	all    []*topRow // worst first
	rows   []*topRow // those passing the filter
	filter string
	// dropsUnknown counts the listeners of the last reading whose kernel
	// gave no drop count.
	dropsUnknown int
	spark        []float64
}

func newTopList(ctx *Context) *topList {
	v := &topList{ctx: ctx, byKey: map[string]*topRow{}}
	cols := append([]column{
		{title: "LISTENER", width: 18, flex: 2, addr: true},
		{title: "PROCESS", width: 16, minWindow: 110},
	}, queueColumns()...)
	v.list = newTable(ctx, append(cols,
		column{title: "DROP/S", width: 6, right: true},
		// A sparkline for each of the three: an accept-queue incident shows
		// only in the first, a SYN flood in the second, a queue that fills
		// between readings only in the drops.
		column{title: "ACC ▁▄█", width: 10, flex: 1},
		column{title: "SYN ▁▄█", width: 10, flex: 1},
		column{title: "DROP ▁▄█", width: 10, flex: 1, minWindow: 100},
	))
	v.list.cell = v.cell
	v.list.rowStyle = func(r int) (lipgloss.Style, bool) {
		row := v.rows[r]
		switch f := row.fill(); {
		case f >= 1:
			return ctx.Styles.Critical, true
		case f >= 0.5 || row.dropRate > 0:
			return ctx.Styles.Warning, true
		}
		return lipgloss.Style{}, false
	}
	v.list.empty = "reading the listeners…"
	return v
}

// apply takes in a reading dt seconds after the previous one (0 for the
// first), keeping the cursor on the listener it was on.
func (v *topList) apply(r TopReading, dt float64) {
	var cur string
	if s := v.selected(); s != nil {
		cur = s.key()
	}
	seen := make(map[string]*topRow, len(r.Listeners))
	v.all = v.all[:0]
	v.dropsUnknown = 0
	for _, l := range r.Listeners {
		// Process names come from the host: shown made safe.
		l.Comm = safetext.Line(l.Comm)
		row := v.byKey[l.Local+"#"+strconv.FormatUint(l.Cookie, 10)]
		if row == nil {
			row = &topRow{}
		}
		prev := row.l.Drops
		row.l = l
		row.dropRate, row.dropsKnown = 0, false
		switch {
		case l.Drops == nil:
			v.dropsUnknown++
		case prev != nil && dt > 0:
			// sk_drops is 32 bits wide in the kernel and wraps: the
			// difference in uint32 is right across one wrap.
			row.dropRate = float64(*l.Drops-*prev) / dt
			row.dropsKnown = true
		}
		row.recvQ.add(float64(l.RecvQ))
		row.synRecv.add(float64(l.SynRecv))
		row.drops.add(row.dropRate)
		seen[row.key()] = row
		v.all = append(v.all, row)
	}
	v.byKey = seen
	slices.SortStableFunc(v.all, worse)
	if r.ListenersErr == nil {
		v.list.empty = "No TCP listener."
	} else {
		v.list.empty = "The listeners could not be read: " + r.ListenersErr.Error()
	}
	v.refilter(cur)
}

func (v *topList) setFilter(f string) {
	v.filter = f
	var cur string
	if s := v.selected(); s != nil {
		cur = s.key()
	}
	v.refilter(cur)
}

// refilter rebuilds the rows that pass the filter and puts the cursor back
// on the listener keyed cur.
func (v *topList) refilter(cur string) {
	v.rows = v.rows[:0]
	q := strings.ToLower(v.filter)
	for _, r := range v.all {
		if q == "" || strings.Contains(strings.ToLower(r.l.Local+" "+r.l.Comm+" "+strconv.Itoa(r.l.Port)), q) {
			v.rows = append(v.rows, r)
		}
	}
	v.list.setRows(len(v.rows))
	for i, r := range v.rows {
		if r.key() == cur {
			v.list.setCursor(i)
			break
		}
	}
}

func (v *topList) selected() *topRow {
	if len(v.rows) == 0 {
		return nil
	}
	return v.rows[v.list.cursor]
}

func (v *topList) cell(r, c int) string {
	row := v.rows[r]
	l := &row.l
	switch c {
	case 0:
		if l.ReusePort {
			return l.Local + " (reuseport)"
		}
		return l.Local
	case 1:
		return processCell(l.Comm, l.PID, v.list.widths()[1])
	case 2:
		return strconv.FormatUint(uint64(l.SendQ), 10)
	case 3:
		return strconv.FormatUint(uint64(l.RecvQ), 10)
	case 4:
		return strconv.Itoa(l.SynRecv)
	case 5:
		return fmt.Sprintf("%.0f%%", row.fill()*100)
	case 6:
		if !row.dropsKnown {
			return "—"
		}
		return rate(row.dropRate)
	case 7:
		v.spark = row.recvQ.values(v.spark)
		return sparkline(v.spark, float64(max(l.SendQ, 1)), 60)
	case 8:
		v.spark = row.synRecv.values(v.spark)
		return sparkline(v.spark, float64(max(l.SendQ, 1)), 60)
	case 9:
		v.spark = row.drops.values(v.spark)
		return sparkline(v.spark, 0, 60)
	}
	return ""
}

// queueColumns are a listener's backlog, accept queue, SYN-RECV count and
// fill, as both listener tables (a bundle's, the live one) show them.
func queueColumns() []column {
	return []column{
		{title: "BACKLOG", width: 7, right: true},
		{title: "ACCEPTQ", width: 7, right: true},
		{title: "SYN-RECV", width: 8, right: true},
		{title: "FILL", width: 5, right: true},
	}
}

// processCell is "comm/pid" in w cells, cutting the name, not the pid,
// which is what an operator acts on; "—" when the owner is unknown.
func processCell(comm string, pid, w int) string {
	if comm == "" {
		return "—"
	}
	p := "/" + strconv.Itoa(pid)
	if w > 0 && runewidth.StringWidth(comm+p) > w {
		comm = runewidth.Truncate(comm, max(w-len(p), 2), "…")
	}
	return comm + p
}

// rate is a per-second rate as a column shows it: whole numbers, one
// decimal below ten.
func rate(v float64) string {
	if v > 0 && v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}
