// Package safetext makes untrusted text safe to print on a terminal or in a
// markdown document. Everything in a bundle (a capture reason, a process
// name, a kernel log line, a host name, a file's content) was written by
// someone else; printed raw, an escape sequence in it can retitle the
// terminal, erase the screen, move the cursor over the report or, with the
// bidirectional overrides, show text in another order than it is stored.
// The renderers pass every such string through this package at the point
// where it is written out; JSON output needs none of it (encoding/json
// escapes control characters itself).
//
// A character is made visible the way Go writes it in a string literal:
// ESC becomes \x1b, U+009B becomes \u009b, U+202E becomes \u202e, and a byte
// that is not UTF-8 becomes \xff. Nothing is dropped, so a reader can still
// see that the text held a control character, and which.
package safetext

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Unsafe reports whether r must not reach a terminal as it is: the C0
// controls (tab and newline included: callers that keep lines say so), DEL,
// the C1 controls U+0080-U+009F (U+009B is a one-character CSI for many
// terminals), and the bidirectional formatting characters (U+061C,
// U+200E-U+200F, U+202A-U+202E, U+2066-U+2069) and line and paragraph
// separators (U+2028, U+2029), which reorder or break what is displayed.
func Unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f:
		return true
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f,
		r >= 0x2028 && r <= 0x202e,
		r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Line returns s with every unsafe character and every byte that is not
// UTF-8 made visible, newline and tab included: for a value shown on one
// line (a reason, a host name, a process name, a table cell).
func Line(s string) string { return escape(s, false) }

// Text is Line for text shown as lines (a file's content, a kernel log
// excerpt): it keeps newlines and tabs and makes everything else visible.
func Text(s string) string { return escape(s, true) }

// Clean reports whether s holds nothing Line would change.
func Clean(s string) bool { return clean(s, false) }

// CleanText reports whether s holds nothing Text would change.
func CleanText(s string) bool { return clean(s, true) }

func kept(r rune, lines bool) bool { return lines && (r == '\n' || r == '\t') }

// clean is the fast path: most text holds nothing to escape, and then it
// is returned without a copy.
func clean(s string, lines bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 || c == 0x7f) && !kept(rune(c), lines) {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || Unsafe(r) {
			return false
		}
		i += n
	}
	return true
}

func escape(s string, lines bool) string {
	if clean(s, lines) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case kept(r, lines):
			b.WriteRune(r)
		case Unsafe(r) && r < utf8.RuneSelf:
			fmt.Fprintf(&b, `\x%02x`, r)
		case Unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Terminal is the last guard before a screen that snapdiag draws itself
// (the TUI): it makes visible every unsafe character as Text does, except
// the SGR sequences (ESC [ digits and semicolons m) that colour and
// emphasise text, which are the only escape sequences the styles emit. The
// data on such a screen is made safe with Line or Text before it is
// styled; Terminal catches what a view forgot, so at worst a colour, never
// a cursor move, a title or a cleared screen, comes from a bundle.
func Terminal(s string) string {
	var b strings.Builder
	done := 0 // s[:done] is in b, when b is used
	for i := 0; i < len(s); {
		if n := sgrLen(s[i:]); n > 0 {
			i += n
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1 || Unsafe(r)) && !kept(r, true) {
			if b.Len() == 0 {
				b.Grow(len(s) + 16)
			}
			b.WriteString(s[done:i])
			b.WriteString(escape(s[i:i+n], true))
			done = i + n
		}
		i += n
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// sgrLen is the length of the SGR sequence s starts with, 0 when it does
// not start with one.
func sgrLen(s string) int {
	if !strings.HasPrefix(s, "\x1b[") {
		return 0
	}
	for i := 2; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9' || c == ';' || c == ':':
		case c == 'm':
			return i + 1
		default:
			return 0
		}
	}
	return 0
}

// Strings returns a deep copy of v in which every string (in exported
// struct fields, slices, arrays, map keys and values, and what pointers
// point to) went through esc. Renderers apply it to what they render, so a
// string field added to a report later is escaped without anyone
// remembering to. Interface values and unexported fields are copied as
// they are.
func Strings[T any](v T, esc func(string) string) T {
	rv := reflect.ValueOf(&v).Elem()
	out := reflect.New(rv.Type()).Elem()
	copyValue(out, rv, esc)
	return out.Interface().(T)
}

func copyValue(dst, src reflect.Value, esc func(string) string) {
	switch src.Kind() {
	case reflect.String:
		dst.SetString(esc(src.String()))
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		copyValue(p.Elem(), src.Elem(), esc)
		dst.Set(p)
	case reflect.Struct:
		dst.Set(src) // unexported fields as they are
		for i := range src.NumField() {
			if dst.Field(i).CanSet() {
				copyValue(dst.Field(i), src.Field(i), esc)
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			copyValue(s.Index(i), src.Index(i), esc)
		}
		dst.Set(s)
	case reflect.Array:
		for i := range src.Len() {
			copyValue(dst.Index(i), src.Index(i), esc)
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			k := reflect.New(src.Type().Key()).Elem()
			copyValue(k, it.Key(), esc)
			e := reflect.New(src.Type().Elem()).Elem()
			copyValue(e, it.Value(), esc)
			m.SetMapIndex(k, e)
		}
		dst.Set(m)
	default:
		dst.Set(src)
	}
}
