package tui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/safetext"
)

// TopSource is what snapdiag top reads from the live host. It is
// implemented outside this package (package top reads the kernel through
// collectors), so the TUI never collects: the Top model only calls it from
// commands, off the UI goroutine, and shows what comes back.
type TopSource interface {
	// Read takes one reading of the listeners and the host's counters.
	Read(ctx context.Context) TopReading
	// HalfOpen lists the sources of the half-open requests of the listener
	// whose Local is local, the most requests first.
	HalfOpen(ctx context.Context, local string) (TopHalfOpen, error)
}

// TopReading is one reading of the host's listen path.
type TopReading struct {
	// At is when the reading was taken; rates are per second of At.
	At time.Time
	// Listeners are every TCP listener (the source's --port filter
	// applied); ListenersErr says why there are none when they could not be
	// read.
	Listeners    []bundle.Listener
	ListenersErr error
	// Counters are the host's listen-path counters, cumulative;
	// CountersErr says why they could not be read.
	Counters    analyze.ListenPath
	CountersErr error
}

// TopHalfOpen is a listener's SYN queue by source.
type TopHalfOpen struct {
	// Total is the listener's request sockets; Others those of the sources
	// left out of Sources.
	Total, Others int
	Sources       []TopHalfOpenSource
}

// TopHalfOpenSource is one remote address with requests in a SYN queue.
type TopHalfOpenSource struct {
	Addr     string
	Requests int
	// MaxRetrans is the most SYN-ACK retransmits among its requests.
	MaxRetrans int
}

// TopOptions are snapdiag top's settings.
type TopOptions struct {
	// Every is the time between readings; 0 means a second.
	Every time.Duration
	// Title names what is watched: the host, the namespace.
	Title string
	// Blind says what this run cannot see and why (each one line, such as
	// "listeners of other users have no process: needs CAP_SYS_PTRACE").
	Blind []string
	// Capture writes a bundle now and returns its path; nil turns 'c' off.
	// It runs in the background: readings go on meanwhile.
	Capture func(ctx context.Context) (string, error)
	// LightBackground styles for a light background until the terminal
	// says which it has.
	LightBackground bool
}

// Top is snapdiag top's model: the host's listeners, the worst first, with
// their queues and drops over the last readings, the host's listen-path
// counters per second above them, and a listener's half-open sources a key
// away. It shares the bundle browser's styles, keys, table and sparklines.
type Top struct {
	ctx  *Context
	src  TopSource
	opts TopOptions
	list *topList
	// detail is the listener whose half-open sources show; nil while the
	// list shows.
	detail *topDetail
	help   help.Model

	last     TopReading
	hasLast  bool
	readings int
	host     *topHost

	filtering bool
	input     filterInput
	showHelp  bool

	status    string
	statusErr bool
	capturing bool
	// quitAfterCapture is set by a quit key pressed while a capture runs:
	// the model quits once the bundle is written, or at a second press.
	quitAfterCapture bool
	// captured is the path of the last bundle 'c' wrote.
	captured string
}

// topHistory is how many readings the sparklines cover.
const topHistory = 40

// NewTop makes snapdiag top's model, reading from src.
func NewTop(src TopSource, opts TopOptions) *Top {
	if opts.Every <= 0 {
		opts.Every = time.Second
	}
	opts.Title = safetext.Line(opts.Title)
	ctx := &Context{Report: &analyze.Report{}, Styles: NewStyles(!opts.LightBackground), Keys: DefaultKeyMap()}
	m := &Top{ctx: ctx, src: src, opts: opts, host: &topHost{}}
	m.list = newTopList(ctx)
	m.help = help.New()
	m.help.Styles = ctx.Styles.Help
	m.resize(80, 24)
	return m
}

// TopReadingMsg carries a reading to the Top model: the model's own
// commands read its source and send it, off the UI goroutine; a benchmark
// or a replay may send its own.
type TopReadingMsg struct{ Reading TopReading }

// Messages of the Top model.
type (
	// topTickMsg asks for the next reading.
	topTickMsg struct{}
	// topHalfOpenMsg carries a listener's half-open sources.
	topHalfOpenMsg struct {
		local string
		h     TopHalfOpen
		err   error
	}
	// topCapturedMsg says where the bundle 'c' asked for went.
	topCapturedMsg struct {
		path string
		err  error
	}
)

// Init takes the first reading at once.
func (m *Top) Init() tea.Cmd {
	return tea.Batch(m.read(), tea.RequestBackgroundColor)
}

// read takes one reading, bounded by a few refresh periods.
func (m *Top) read() tea.Cmd {
	src, limit := m.src, max(3*m.opts.Every, 2*time.Second)
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		return TopReadingMsg{src.Read(ctx)}
	}
}

func (m *Top) halfOpen(local string) tea.Cmd {
	src, limit := m.src, max(3*m.opts.Every, 2*time.Second)
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		h, err := src.HalfOpen(ctx, local)
		return topHalfOpenMsg{local: local, h: h, err: err}
	}
}

// Captured is the path of the last bundle 'c' wrote, "" when none was.
func (m *Top) Captured() string { return m.captured }

// Readings is how many readings the model has shown.
func (m *Top) Readings() int { return m.readings }

// Selected is the listener under the cursor, nil when there is none.
func (m *Top) Selected() *bundle.Listener {
	if r := m.list.selected(); r != nil {
		return &r.l
	}
	return nil
}

// Detail is the listener whose half-open sources show, nil when the list
// shows.
func (m *Top) Detail() *bundle.Listener {
	if m.detail == nil {
		return nil
	}
	return &m.detail.row.l
}

// Update handles a message. The body is laid out again after every one:
// a note, a filter line or the detail may have come or gone.
func (m *Top) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if size, ok := msg.(tea.WindowSizeMsg); ok {
		m.ctx.Width, m.ctx.Height = size.Width, size.Height
	}
	cmd := m.update(msg)
	m.resize(m.ctx.Width, m.ctx.Height)
	return m, cmd
}

func (m *Top) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.BackgroundColorMsg:
		restyle(m.ctx, &m.help, msg.IsDark())
	case tea.KeyPressMsg:
		return m.key(msg)
	case TopReadingMsg:
		m.apply(msg.Reading)
		next := tea.Tick(m.opts.Every, func(time.Time) tea.Msg { return topTickMsg{} })
		if m.detail != nil {
			// The half-open sources are read again with every reading.
			return tea.Batch(next, m.halfOpen(m.detail.row.l.Local))
		}
		return next
	case topTickMsg:
		return m.read()
	case topHalfOpenMsg:
		if m.detail != nil && m.detail.row.l.Local == msg.local {
			m.detail.set(msg.h, msg.err)
		}
	case topCapturedMsg:
		m.capturing = false
		if msg.err != nil {
			m.setStatus("capture failed: "+msg.err.Error(), true)
		} else {
			m.captured = msg.path
			m.setStatus("bundle written: "+msg.path, false)
		}
		if m.quitAfterCapture {
			return tea.Quit
		}
	}
	return nil
}

// apply takes in a reading: rates against the previous one, the rows in
// worst-first order.
func (m *Top) apply(r TopReading) {
	var dt float64
	if m.hasLast {
		dt = r.At.Sub(m.last.At).Seconds()
	}
	m.list.apply(r, dt)
	m.host.apply(m.last, r, m.hasLast, dt)
	m.last, m.hasLast = r, true
	m.readings++
	if m.detail != nil {
		if row := m.list.byKey[m.detail.row.key()]; row != nil {
			m.detail.row = row
		} else {
			m.detail.gone = true
		}
	}
}

func (m *Top) setStatus(s string, isErr bool) { m.status, m.statusErr = s, isErr }

func (m *Top) key(msg tea.KeyPressMsg) tea.Cmd {
	k := m.ctx.Keys
	if m.filtering {
		closed, changed := filterKey(k, &m.input, msg)
		m.filtering = !closed
		if changed {
			m.list.setFilter(m.input.value)
		}
		return nil
	}
	if m.showHelp {
		return closeHelp(k, msg, &m.showHelp)
	}
	if !m.capturing {
		m.status = ""
	}
	switch {
	case key.Matches(msg, k.Quit):
		if m.capturing && !m.quitAfterCapture {
			// Quitting now would leave the capture's staging file behind.
			m.quitAfterCapture = true
			m.setStatus("quitting once the capture is written ("+msg.String()+" again quits now)", false)
			return nil
		}
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.showHelp = true
	case key.Matches(msg, k.Capture):
		return m.capture()
	case key.Matches(msg, k.Back):
		switch {
		case m.detail != nil:
			m.detail = nil
		case m.list.filter != "":
			m.list.setFilter("")
		}
	case m.detail != nil:
		m.detail.list.handleKey(msg)
	case key.Matches(msg, k.Filter):
		m.filtering = true
		m.input.value = m.list.filter
	case key.Matches(msg, k.Open):
		if r := m.list.selected(); r != nil {
			m.detail = newTopDetail(m.ctx, r)
			m.resize(m.ctx.Width, m.ctx.Height)
			return m.halfOpen(r.l.Local)
		}
	default:
		m.list.list.handleKey(msg)
	}
	return nil
}

// capture starts a capture in the background, one at a time.
func (m *Top) capture() tea.Cmd {
	switch {
	case m.opts.Capture == nil:
		m.setStatus("capturing is off in this run", true)
		return nil
	case m.capturing:
		m.setStatus("a capture is already running", false)
		return nil
	}
	m.capturing = true
	m.setStatus("capturing a bundle…", false)
	capture := m.opts.Capture
	return func() tea.Msg {
		path, err := capture(context.Background())
		if err == nil && path == "" {
			err = errors.New("no bundle was written")
		}
		return topCapturedMsg{path: path, err: err}
	}
}

// chrome is the lines around the body: header, counters, rule, the notes
// of what this run cannot see, the filter line, the footer.
func (m *Top) chrome() int {
	n := 4 + len(m.notes())
	if m.filterLine() != "" {
		n++
	}
	return n
}

func (m *Top) resize(w, h int) {
	m.ctx.Width, m.ctx.Height = w, h
	m.help.SetWidth(w)
	bh := max(h-m.chrome(), 1)
	m.list.list.setSize(w, bh)
	if m.detail != nil {
		m.detail.setSize(w, bh)
	}
}

// notes are the lines that say what this run cannot see, at most two.
func (m *Top) notes() []string {
	var parts []string
	for _, b := range m.opts.Blind {
		parts = append(parts, "cannot see: "+b)
	}
	if m.hasLast && m.last.ListenersErr != nil {
		parts = append(parts, "listeners: "+m.last.ListenersErr.Error())
	}
	if m.hasLast && m.last.CountersErr != nil {
		parts = append(parts, "counters: "+m.last.CountersErr.Error())
	}
	if m.list.dropsUnknown > 0 {
		parts = append(parts, fmt.Sprintf("%d listeners without their own drop count: this kernel does not report it (before 4.7)", m.list.dropsUnknown))
	}
	if len(parts) == 0 || m.ctx.Width < 20 {
		return nil
	}
	lines := joinWrapped(parts, " · ", m.ctx.Width)
	return lines[:min(len(lines), 2)]
}

func (m *Top) filterLine() string {
	filter := m.list.filter
	if m.detail != nil {
		filter = ""
	}
	return filterLine(m.ctx, &m.input, m.filtering, filter)
}

// View implements tea.Model: the screen Render draws, on the alternate
// screen.
func (m *Top) View() tea.View { return altScreen(m.Render()) }

// Render draws the whole screen as styled text.
func (m *Top) Render() string {
	w, h := m.ctx.Width, m.ctx.Height
	if w < 20 || h < 8 {
		return "window too small"
	}
	var body string
	switch {
	case m.showHelp:
		body = m.fullHelp(max(h-m.chrome(), 1))
	case m.detail != nil:
		body = m.detail.view()
	default:
		body = m.list.list.View()
	}
	var notes []string
	for _, n := range m.notes() {
		notes = append(notes, m.ctx.Styles.Warning.Render(fit(n, w)))
	}
	return screenFrame(m.ctx, m.headerText(), fit(m.host.line(m.ctx, w), w), notes, body, m.filterLine(), m.footer())
}

func (m *Top) headerText() string {
	parts := []string{"snapdiag top"}
	if m.opts.Title != "" {
		parts = append(parts, m.opts.Title)
	}
	parts = append(parts, "every "+m.opts.Every.String())
	if m.hasLast {
		n := fmt.Sprintf("%d listeners", len(m.list.all))
		if len(m.list.all) == 1 {
			n = "1 listener"
		}
		parts = append(parts, n, m.last.At.UTC().Format("15:04:05Z"))
	} else {
		parts = append(parts, "reading…")
	}
	if m.capturing {
		parts = append(parts, "capturing")
	}
	return strings.Join(parts, " · ")
}

func (m *Top) keys() []key.Binding {
	k := m.ctx.Keys
	if m.detail != nil {
		return []key.Binding{k.Up, k.Down, withHelp(k.Back, "esc", "listeners"), k.Capture}
	}
	return []key.Binding{k.Up, k.Down, withHelp(k.Open, "enter", "half-open sources"), k.Capture, k.Filter}
}

func (m *Top) footer() string {
	return footer(m.ctx, &m.help, m.status, m.statusErr, m.filtering, m.keys())
}

func (m *Top) fullHelp(h int) string {
	k := m.ctx.Keys
	groups := [][]key.Binding{k.navHelp(), m.keys(), {k.Help, k.Quit}}
	lines := []string{m.ctx.Styles.Title.Render("Keys: top"), ""}
	lines = append(lines, strings.Split(m.help.FullHelpView(groups), "\n")...)
	for _, b := range m.opts.Blind {
		lines = append(lines, "", m.ctx.Styles.Warning.Render("cannot see: "+b))
	}
	lines = append(lines, "", m.ctx.Styles.Muted.Render("any key closes this help"))
	for i := range lines {
		lines[i] = fit(lines[i], m.ctx.Width)
	}
	return block(lines, h)
}

// isGone reports whether err says a listener is no longer there.
func isGone(err error) bool { return errors.Is(err, fs.ErrNotExist) }
