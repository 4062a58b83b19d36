package tui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/safetext"
)

// Bounds on what the TUI reads from one member.
const (
	maxTextFile   = 8 << 20   // a text member shown in the files view
	maxBinaryFile = 256 << 10 // a binary member, shown as a hex dump
)

// memberRow is one member of the bundle in the files view.
type memberRow struct {
	name string
	size int64
}

// memberLister is what bundle.Bundle offers beyond fs.FS: its members in
// archive order, without walking directories.
type memberLister interface {
	Members() []bundle.MemberInfo
}

// loadMembers lists the bundle's members.
func loadMembers(fsys fs.FS) tea.Cmd {
	return func() tea.Msg {
		if ml, ok := fsys.(memberLister); ok {
			var out []memberRow
			for _, m := range ml.Members() {
				out = append(out, memberRow{name: m.Name, size: m.Size})
			}
			return membersMsg{members: sortMembers(out)}
		}
		var out []memberRow
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			var size int64
			if fi, err := d.Info(); err == nil {
				size = fi.Size()
			}
			out = append(out, memberRow{name: p, size: size})
			return nil
		})
		if err != nil {
			err = fmt.Errorf("list members: %w", err)
		}
		return membersMsg{members: sortMembers(out), err: err}
	}
}

// sortMembers orders members by path, so the ones of a folder stay
// together whatever order the archive holds them in.
func sortMembers(ms []memberRow) []memberRow {
	slices.SortFunc(ms, func(a, b memberRow) int { return strings.Compare(a.name, b.name) })
	return ms
}

// loadFile reads one member for the files view: text as lines, anything
// else as a hex dump, each within its bound.
func loadFile(fsys fs.FS, name string) tea.Cmd {
	return func() tea.Msg {
		msg := fileMsg{name: name}
		f, err := fsys.Open(name)
		if err != nil {
			msg.err = fmt.Errorf("open %s: %w", name, err)
			return msg
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxTextFile+1))
		if err != nil && !errors.Is(err, io.EOF) {
			msg.err = fmt.Errorf("read %s: %w", name, err)
			return msg
		}
		head := data[:min(len(data), 8<<10)]
		msg.binary = bytes.IndexByte(head, 0) >= 0 || !utf8.Valid(trimPartialRune(head))
		limit := maxTextFile
		if msg.binary {
			limit = maxBinaryFile
		}
		if len(data) > limit {
			data, msg.truncated = data[:limit], true
		}
		if msg.binary {
			msg.lines = hexDump(data)
		} else {
			text := strings.ReplaceAll(strings.TrimSuffix(string(data), "\n"), "\t", "    ")
			// A member's text is shown with its control characters made
			// visible: a kernel log line must not drive the terminal.
			msg.lines = strings.Split(safetext.Text(text), "\n")
		}
		return msg
	}
}

// trimPartialRune drops a rune cut in half at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := 0; i < 3 && len(b) > 0; i++ {
		if utf8.Valid(b) {
			return b
		}
		b = b[:len(b)-1]
	}
	return b
}

// hexDump formats data as hexdump -C does: offset, 16 bytes, their text.
func hexDump(data []byte) []string {
	lines := make([]string, 0, len(data)/16+1)
	var b strings.Builder
	for off := 0; off < len(data); off += 16 {
		row := data[off:min(off+16, len(data))]
		b.Reset()
		fmt.Fprintf(&b, "%08x  ", off)
		for i := range 16 {
			if i < len(row) {
				fmt.Fprintf(&b, "%02x ", row[i])
			} else {
				b.WriteString("   ")
			}
			if i == 7 {
				b.WriteByte(' ')
			}
		}
		b.WriteString(" |")
		for _, c := range row {
			if c < 0x20 || c > 0x7e {
				c = '.'
			}
			b.WriteByte(c)
		}
		b.WriteString("|")
		lines = append(lines, b.String())
	}
	return lines
}
