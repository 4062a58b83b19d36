package tui

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
)

// Timeline marks, for a source's handshakes in each slice of the sample.
const (
	markHalfOpen   = 'x' // the server answered, the client never completed
	markUnanswered = 'u' // SYNs re-sent, no SYN-ACK
	markDone       = '+' // completed (the client's ACK)
	markOpen       = '-' // in progress
	markNone       = '·'
)

// packetsView shows the packet sample per source: SYNs, SYN-ACKs,
// retransmits and half-open handshakes, the half-open sources first, each
// with a timeline across the sample. Enter lists a source's handshakes.
type packetsView struct {
	ctx     *Context
	list    *table
	missing missing // why there is no packet sample
	pa      *analyze.PacketAnalysis
	all     []*analyze.SourceStats
	rows    []*analyze.SourceStats
	filter  string
	flows   map[string][]*analyze.Handshake // by source address
	source  string                          // the source open, "" for the list
	flowTab *table
	width   int
	height  int
}

func newPacketsView(ctx *Context) *packetsView {
	v := &packetsView{ctx: ctx}
	v.list = newTable(ctx, []column{
		{title: "SOURCE", width: 17, flex: 1},
		{title: "FLOWS", width: 5, right: true},
		{title: "SYN", width: 5, right: true},
		{title: "SYN-ACK", width: 7, right: true, minWindow: 90},
		{title: "RETX", width: 5, right: true},
		{title: "HALF-OPEN", width: 9, right: true},
		{title: "DONE", width: 5, right: true},
		{title: "TIMELINE", width: 10, flex: 2},
	})
	v.list.cell = v.cell
	v.list.rowStyle = func(r int) (lipgloss.Style, bool) {
		if v.rows[r].HalfOpen > 0 || v.rows[r].Unanswered > 0 {
			return ctx.Styles.Warning, true
		}
		return lipgloss.Style{}, false
	}
	v.list.empty = "loading…"
	v.flowTab = newTable(ctx, []column{
		{title: "CLIENT", width: 21, flex: 1},
		{title: "SERVER", width: 21, flex: 1, minWindow: 90},
		{title: "START", width: 7, right: true},
		{title: "SYN", width: 4, right: true},
		{title: "SYN-ACK", width: 7, right: true},
		{title: "ACK AT", width: 8, right: true},
		{title: "OUTCOME", width: 14},
		{title: "TIMELINE", width: 10, flex: 1, minWindow: 110},
	})
	v.flowTab.cell = v.flowCell
	return v
}

func (v *packetsView) cell(r, c int) string {
	s := v.rows[r]
	switch c {
	case 0:
		return s.Addr.String()
	case 1:
		return strconv.Itoa(s.Flows)
	case 2:
		return strconv.Itoa(s.SYNs)
	case 3:
		return strconv.Itoa(v.synacks(s))
	case 4:
		return strconv.Itoa(s.SYNRetrans + s.SYNACKRetrans)
	case 5:
		return strconv.Itoa(s.HalfOpen)
	case 6:
		return strconv.Itoa(s.Completed)
	case 7:
		return v.timeline(v.flows[s.Addr.String()], v.list.widths()[7])
	}
	return ""
}

// synacks counts the SYN-ACKs a source's handshakes got.
func (v *packetsView) synacks(s *analyze.SourceStats) int {
	n := 0
	for _, h := range v.flows[s.Addr.String()] {
		n += h.SYNACKs
	}
	return n
}

// outcome names how a handshake ended in the sample.
func (v *packetsView) outcome(h *analyze.Handshake) string {
	switch {
	case h.RSTAfterACK:
		return "reset at ACK"
	case h.AckTimeOverflow():
		return "ACK dropped"
	case h.HalfOpen(v.pa.End):
		return "half-open"
	case h.Unanswered():
		return "unanswered"
	case h.ServerRST:
		return "refused (RST)"
	case h.ClientRST:
		return "client reset"
	case h.ACKed:
		return "completed"
	case h.Undetermined(v.pa.End):
		// The sample did not keep what would tell (see the half-open
		// finding for why): not a broken client, not a good one.
		return "cannot tell"
	}
	return "in progress"
}

func (v *packetsView) flowCell(r, c int) string {
	h := v.flows[v.source][r]
	switch c {
	case 0:
		return h.Client.String()
	case 1:
		return h.Server.String()
	case 2:
		return fmt.Sprintf("+%.2fs", h.First.Sub(v.pa.Start).Seconds())
	case 3:
		return fmt.Sprintf("%d", h.SYNs)
	case 4:
		if h.SYNACKRetrans > 0 {
			return fmt.Sprintf("%d (%dr)", h.SYNACKs, h.SYNACKRetrans)
		}
		return strconv.Itoa(h.SYNACKs)
	case 5:
		if !h.ACKed {
			return "—"
		}
		return fmt.Sprintf("%.0fms", float64(h.AckTime.Sub(h.First))/float64(time.Millisecond))
	case 6:
		return v.outcome(h)
	case 7:
		return v.timeline([]*analyze.Handshake{h}, v.flowTab.widths()[7])
	}
	return ""
}

// timeline draws handshakes across the sample in w slices: in each, the
// worst thing that happened (half-open, unanswered, in progress,
// completed).
func (v *packetsView) timeline(hs []*analyze.Handshake, w int) string {
	if w <= 0 || v.pa == nil {
		return ""
	}
	span := v.pa.End.Sub(v.pa.Start)
	if span <= 0 {
		span = time.Second
	}
	slot := func(t time.Time) int {
		i := int(float64(t.Sub(v.pa.Start)) / float64(span) * float64(w))
		return min(max(i, 0), w-1)
	}
	rank := map[rune]int{markNone: 0, markDone: 1, markOpen: 2, markUnanswered: 3, markHalfOpen: 4}
	line := []rune(strings.Repeat(string(markNone), w))
	put := func(i int, m rune) {
		if rank[m] > rank[line[i]] {
			line[i] = m
		}
	}
	for _, h := range hs {
		m := markOpen
		switch {
		case h.HalfOpen(v.pa.End):
			m = markHalfOpen
		case h.Unanswered():
			m = markUnanswered
		}
		end := h.Last
		if h.ACKed {
			end = h.AckTime
		}
		for i := slot(h.First); i <= slot(end); i++ {
			put(i, m)
		}
		if h.ACKed {
			put(slot(h.AckTime), markDone)
		}
	}
	return string(line)
}

func (v *packetsView) Filter() string { return v.filter }

func (v *packetsView) SetFilter(s string) tea.Cmd {
	v.filter = s
	v.refilter()
	return nil
}

func (v *packetsView) refilter() {
	v.rows = v.rows[:0]
	for _, s := range v.all {
		if v.filter == "" || strings.Contains(s.Addr.String(), v.filter) {
			v.rows = append(v.rows, s)
		}
	}
	v.list.setRows(len(v.rows))
}

func (v *packetsView) SetSize(w, h int) {
	v.width, v.height = w, h
	v.list.setSize(w, max(h-1, 1))
	v.flowTab.setSize(w, max(h-1, 1))
}

func (v *packetsView) Back() bool {
	if v.source != "" {
		v.source = ""
		return true
	}
	return false
}

func (v *packetsView) Jump(Target) tea.Cmd {
	v.source = ""
	v.filter = ""
	v.refilter()
	v.list.setCursor(0)
	return nil
}

func (v *packetsView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case focusMsg:
		// Another namespace's packets, from the snapshot that follows
		// (the root model sizes the new view).
		*v = *newPacketsView(v.ctx)
	case snapshotMsg:
		if msg.snap.Packets == nil {
			v.missing, v.list.empty = whyMissing(msg.snap, bundle.PathPackets, "packets",
				"No packets/sample.pcap in this bundle: the packet sample was off, or it failed (see the manifest).")
			for _, g := range msg.snap.Gaps {
				if g.Path == bundle.PathPackets && !errors.Is(g.Cause, fs.ErrNotExist) {
					v.list.empty = "packets/sample.pcap could not be read: " + g.Err
					if errors.Is(g.Cause, bundle.ErrCorrupt) {
						v.missing = missingDamaged
					}
				}
			}
			return nil
		}
		v.load(msg.snap.Packets)
	case tea.KeyPressMsg:
		if v.source != "" {
			v.flowTab.handleKey(msg)
			return nil
		}
		if v.list.handleKey(msg) {
			return nil
		}
		if key.Matches(msg, v.ctx.Keys.Open) && len(v.rows) > 0 {
			v.source = v.rows[v.list.cursor].Addr.String()
			v.flowTab.setRows(len(v.flows[v.source]))
			v.flowTab.setCursor(0)
		}
	}
	return nil
}

func (v *packetsView) load(pa *analyze.PacketAnalysis) {
	v.pa = pa
	v.flows = map[string][]*analyze.Handshake{}
	for _, h := range pa.Flows {
		a := h.Client.Addr().String()
		v.flows[a] = append(v.flows[a], h)
	}
	for _, hs := range v.flows {
		// Half-open handshakes first, then by time.
		slices.SortStableFunc(hs, func(a, b *analyze.Handshake) int {
			return cmp.Or(cmp.Compare(b2i(b.HalfOpen(pa.End)), b2i(a.HalfOpen(pa.End))), a.First.Compare(b.First))
		})
	}
	v.all = slices.Clone(pa.Sources)
	slices.SortStableFunc(v.all, func(a, b *analyze.SourceStats) int {
		return cmp.Or(cmp.Compare(b.HalfOpen, a.HalfOpen), cmp.Compare(b.Unanswered, a.Unanswered),
			cmp.Compare(b.Flows, a.Flows), a.Addr.Compare(b.Addr))
	})
	v.list.empty = "No TCP handshake in the packet sample."
	v.refilter()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (v *packetsView) summary() string {
	if v.pa == nil {
		return ""
	}
	pa := v.pa
	s := fmt.Sprintf("%d packets over %.1fs", pa.Packets, pa.End.Sub(pa.Start).Seconds())
	if pa.Sampled {
		// The counts here are the sample's own; analyze's findings scale
		// them to estimates.
		s += fmt.Sprintf(" (sampled, 1 in %.0f kept)", pa.Scale)
	}
	s += fmt.Sprintf(" · %d handshakes: %d half-open, %d unanswered, %d completed",
		len(pa.Flows), pa.HalfOpen, pa.Unanswered, pa.Completed)
	if pa.Truncated {
		s += " · flow table full"
	}
	return s
}

func (v *packetsView) View() string {
	st := v.ctx.Styles
	legend := fmt.Sprintf("  timeline: %c half-open %c unanswered %c open %c completed",
		markHalfOpen, markUnanswered, markOpen, markDone)
	if v.source != "" {
		head := st.Title.Render(" "+v.source) + st.Muted.Render(fmt.Sprintf("  %d handshakes%s", len(v.flows[v.source]), legend))
		return fit(head, v.width) + "\n" + v.flowTab.View()
	}
	head := " " + v.summary()
	if v.pa != nil && v.width >= 120 {
		head += legend
	}
	return st.Muted.Render(fit(head, v.width)) + "\n" + v.list.View()
}

func (v *packetsView) ShortHelp() []key.Binding {
	k := v.ctx.Keys
	if v.source != "" {
		return []key.Binding{k.Up, k.Down, withHelp(k.Back, "esc", "sources")}
	}
	return []key.Binding{k.Up, k.Down, withHelp(k.Open, "enter", "handshakes"), withHelp(k.Filter, "/", "filter address")}
}

func (v *packetsView) FullHelp() [][]key.Binding {
	return [][]key.Binding{v.ctx.Keys.navHelp(), v.ShortHelp()}
}
