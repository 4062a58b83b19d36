package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestLineAndText(t *testing.T) {
	for _, tc := range []struct{ in, line, text string }{
		{"imap health check", "imap health check", "imap health check"},
		{"x\x1b]0;PWNED\a\x1b[2J", `x\x1b]0;PWNED\x07\x1b[2J`, `x\x1b]0;PWNED\x07\x1b[2J`},
		{"a\nb\tc\r", `a\x0ab\x09c\x0d`, "a\nb\tc\\x0d"},
		{"del\x7f", `del\x7f`, `del\x7f`},
		{"c1 \u009b2J \u0085", `c1 \u009b2J \u0085`, `c1 \u009b2J \u0085`},
		{"bidi \u202egnp.exe\u202c \u2066x\u2069", `bidi \u202egnp.exe\u202c \u2066x\u2069`, `bidi \u202egnp.exe\u202c \u2066x\u2069`},
		{"bad \xff\x9b utf8", `bad \xff\x9b utf8`, `bad \xff\x9b utf8`},
		{"héllo wörld ✓ 日本", "héllo wörld ✓ 日本", "héllo wörld ✓ 日本"},
	} {
		if got := Line(tc.in); got != tc.line {
			t.Errorf("Line(%q) = %q, want %q", tc.in, got, tc.line)
		}
		if got := Text(tc.in); got != tc.text {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.text)
		}
	}
}

func TestTerminalKeepsOnlySGR(t *testing.T) {
	in := "\x1b[1;31mred\x1b[0m \x1b]0;t\a \x1b[2J \u009b6n\n"
	want := "\x1b[1;31mred\x1b[0m \\x1b]0;t\\x07 \\x1b[2J \\u009b6n\n"
	if got := Terminal(in); got != want {
		t.Errorf("Terminal(%q) = %q, want %q", in, got, want)
	}
	if s := "\x1b[36mplain\x1b[0m\n"; Terminal(s) != s {
		t.Errorf("Terminal changed %q", s)
	}
}

type inner struct {
	Name  string
	Tags  []string
	hid   string
	Count int
}

type outer struct {
	A   string
	P   *inner
	L   []inner
	M   map[string]string
	Arr [2]string
	Any any
}

func TestStringsCopiesDeep(t *testing.T) {
	in := outer{
		A: "a\x1b", P: &inner{Name: "p\a", hid: "h\x1b", Count: 3}, L: []inner{{Name: "l\x1b", Tags: []string{"t\x1b"}}},
		M: map[string]string{"k\x1b": "v\x1b"}, Arr: [2]string{"x\x1b", "y"}, Any: "i\x1b",
	}
	got := Strings(in, Line)
	want := outer{
		A: `a\x1b`, P: &inner{Name: `p\x07`, hid: "h\x1b", Count: 3}, L: []inner{{Name: `l\x1b`, Tags: []string{`t\x1b`}}},
		M: map[string]string{`k\x1b`: `v\x1b`}, Arr: [2]string{`x\x1b`, "y"}, Any: "i\x1b",
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(inner{})); d != "" {
		t.Errorf("Strings (-want +got):\n%s", d)
	}
	if in.A != "a\x1b" || in.P.Name != "p\a" || in.L[0].Tags[0] != "t\x1b" || in.M["k\x1b"] != "v\x1b" {
		t.Errorf("Strings changed its input: %+v", in)
	}
}

// FuzzEscape: whatever the input, Line leaves no control character, byte
// that is not UTF-8 or bidi override; Text leaves only newlines and tabs;
// Terminal leaves no escape sequence but SGR; clean text is unchanged.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "plain", "x\x1b]0;PWNED\a\x1b[2J", "\u009b\u202e\xff", "a\nb\t", "\x1b[31mred\x1b[0m\x1b[", "\x1b[1;2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		line, text, term := Line(s), Text(s), Terminal(s)
		for name, out := range map[string]string{"Line": line, "Text": text} {
			if !utf8.ValidString(out) {
				t.Fatalf("%s(%q) = %q: not UTF-8", name, s, out)
			}
			for _, r := range out {
				if Unsafe(r) && !(name == "Text" && (r == '\n' || r == '\t')) {
					t.Fatalf("%s(%q) = %q holds %U", name, s, out, r)
				}
			}
		}
		if Clean(s) != (line == s) || CleanText(s) != (text == s) {
			t.Fatalf("Clean(%q) = %v but Line changed it: %v", s, Clean(s), line != s)
		}
		rest := term
		for {
			i := strings.IndexByte(rest, 0x1b)
			if i < 0 {
				break
			}
			n := sgrLen(rest[i:])
			if n == 0 {
				t.Fatalf("Terminal(%q) = %q keeps an escape that is not SGR at %d", s, term, i)
			}
			rest = rest[i+n:]
		}
		for _, r := range strings.ReplaceAll(term, "\x1b", "") {
			if Unsafe(r) && r != '\n' && r != '\t' {
				t.Fatalf("Terminal(%q) = %q holds %U", s, term, r)
			}
		}
	})
}
