package tui

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
)

// damager is what bundle.Bundle tells about a damaged bundle opened with
// Limits.Partial.
type damager interface{ Damage() error }

// manifestView shows what was captured: host, trigger, options, and every
// collector with its status, and for the failed ones why.
type manifestView struct {
	ctx   *Context
	pager *pager
}

func newManifestView(ctx *Context) *manifestView {
	return &manifestView{ctx: ctx, pager: newPager(ctx)}
}

func (v *manifestView) Filter() string             { return v.pager.filter }
func (v *manifestView) SetSize(w, h int)           { v.pager.setSize(w, h) }
func (v *manifestView) View() string               { return v.pager.view() }
func (v *manifestView) SetFilter(s string) tea.Cmd { v.pager.setFilter(s); return nil }

func (v *manifestView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case snapshotMsg:
		v.pager.setLines(manifestLines(v.ctx, msg.snap))
	case tea.KeyPressMsg:
		v.pager.handleKey(msg)
	}
	return nil
}

func (v *manifestView) ShortHelp() []key.Binding {
	k := v.ctx.Keys
	return []key.Binding{k.Up, k.Down, k.PageDown, withHelp(k.Filter, "/", "filter lines")}
}

func (v *manifestView) FullHelp() [][]key.Binding {
	return [][]key.Binding{v.ctx.Keys.navHelp(), {withHelp(v.ctx.Keys.Filter, "/", "filter lines")}}
}

// manifestLines lays the manifest out as text.
func manifestLines(ctx *Context, s *analyze.Snapshot) []string {
	st := ctx.Styles
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	section := func(t string) {
		if len(out) > 0 {
			out = append(out, "")
		}
		out = append(out, " "+st.TableHead.Render(t))
	}
	if d, ok := ctx.FS.(damager); ok && d.Damage() != nil {
		out = append(out, " "+st.Error.Render("damaged bundle: "+d.Damage().Error()),
			" "+st.Muted.Render("the members before the damage are shown; the rest were lost"))
	}
	m := s.Manifest
	if m == nil {
		out = append(out, " "+st.Warning.Render("this bundle has no readable manifest.json"))
	} else {
		section("Capture")
		add("   format      %s", m.Format)
		add("   tool        %s %s", cmpDash(m.Tool.Name), m.Tool.Version)
		add("   host        %s (%s, kernel %s)", m.Host.Hostname, cmpDash(m.Host.Machine), m.Host.KernelRelease)
		if m.Host.BootID != "" {
			add("   boot id     %s", m.Host.BootID)
		}
		if m.Host.NetNSInode != 0 {
			add("   netns       inode %d", m.Host.NetNSInode)
		}
		caps := strings.Join(m.Host.Capabilities, ", ")
		add("   euid        %d  capabilities: %s", m.Host.EUID, cmpDash(caps))
		add("   time        %s → %s (%s)", fmtTime(m.Start), fmtTime(m.End), m.End.Sub(m.Start).Round(time.Millisecond))
		if c := m.Cost; c != nil {
			add("   cost        %s", c.Summary())
		}
		switch {
		case m.StoppedBy == bundle.StoppedBySignal:
			out = append(out, "   "+st.Warning.Render("a signal ("+m.Signal+") stopped the capture before it ran its course"))
		case m.DeadlineHit:
			out = append(out, "   "+st.Warning.Render("the capture deadline cut at least one collector"))
		}
		if n := m.NetNS; n != nil {
			section("Network namespace")
			netnsLines(n, add)
		}
		section("Trigger")
		add("   reason      %s", cmpDash(m.Trigger.Reason))
		if c := m.Trigger.Check; c != nil {
			add("   check       %s %s: %s %s (%.0f ms)", c.Kind, c.Target, c.Result, c.Error, c.LatencyMS)
		}
		for _, k := range slices.Sorted(maps.Keys(m.Trigger.Systemd)) {
			add("   %-11s %s", k, m.Trigger.Systemd[k])
		}
		section("Options")
		o := m.Options
		add("   samples     %d every %.0f ms (%d from the watchdog's history)", o.Samples, o.IntervalMS, o.History)
		add("   packets     %.0f ms window, at most %d packets", o.SampleMS, o.PacketLimit)
		add("   deadline    %.0f ms   socket cap %d   ports %v", o.DeadlineMS, o.SocketCap, o.Ports)
		if si := m.Sockets; si != nil {
			trunc := ""
			if si.Truncated {
				trunc = st.Warning.Render("  (truncated: the table holds only the first rows)")
			}
			add("   sockets     %d of %d written (cap %d)%s", si.Written, si.Total, si.Cap, trunc)
		}
		if p := m.Packets; p != nil {
			add("   pcap        %d packets, %d bytes, %d dropped by the kernel, stopped by %s; filter %q",
				p.Packets, p.Bytes, p.KernelDrops, cmpDash(p.StoppedBy), p.Filter)
		}
		if k := m.Kmsg; k != nil {
			add("   kmsg        %d lines (truncated: %v)", k.Lines, k.Truncated)
		}
		if sc := m.Sysctls; sc != nil {
			add("   sysctls     %d read, %d unreadable", sc.Read, sc.Unreadable)
		}
		section("Collectors")
		add("   %-14s %-8s %9s  %s", "NAME", "STATUS", "TIME", "FILES / ERROR")
		for _, c := range m.Collectors {
			status := string(c.Status)
			switch c.Status {
			case bundle.StatusFailed, bundle.StatusTimeout:
				status = st.Error.Render(fmt.Sprintf("%-8s", status))
			case bundle.StatusAbsent:
				status = st.Muted.Render(fmt.Sprintf("%-8s", status))
			default:
				status = fmt.Sprintf("%-8s", status)
			}
			add("   %-14s %s %7.0fms  %d files", c.Name, status, c.DurationMS, len(c.Files))
			if c.Error != "" {
				add("      why: %s", c.Error)
			}
			for _, n := range c.Notes {
				add("      note: %s", n)
			}
		}
	}
	if len(s.Gaps) > 0 {
		section("Members the analysis did without")
		for _, g := range s.Gaps {
			add("   %-40s %s", g.Path, g.Err)
		}
	}
	if len(ctx.Report.Collectors) > 0 && m == nil {
		section("Collectors (from the report)")
		for _, c := range ctx.Report.Collectors {
			add("   %-14s %-8s %s", c.Name, c.Status, c.Error)
		}
	}
	return out
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

// netnsLines describes the namespace a capture read and its owner, one add
// per line.
func netnsLines(n *bundle.NetNS, add func(format string, args ...any)) {
	named := n.NamedBy
	if n.Name != "" {
		named += " " + n.Name
	}
	host := ""
	if n.HostNS {
		host = ", the host's"
	}
	add("   read        %s (inode %d%s)", n.String(), n.Inode, host)
	add("   named by    %s", named)
	if n.Path != "" {
		add("   file        %s", n.Path)
	}
	if n.PID != 0 {
		add("   process     %d %s", n.PID, n.Comm)
	}
	o := n.Owner
	if o == nil {
		return
	}
	add("   container   %s %s", cmpDash(o.ContainerID), o.Runtime)
	if o.Name != "" {
		add("   name        %s", o.Name)
	}
	if o.Image != "" {
		add("   image       %s", o.Image)
	}
	if p := o.Pod; p != nil {
		add("   pod         %s/%s %s", p.Namespace, p.Name, p.UID)
	}
	if o.Cgroup != "" {
		add("   cgroup      %s", o.Cgroup)
	}
}
