package analyze

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/safetext"
)

// renderedSafe renders r as text (plain and coloured) and as markdown and
// fails when a control character other than a newline reaches the output,
// or, in colour, an escape sequence other than the renderer's own SGR.
func renderedSafe(t *testing.T, r *Report) {
	t.Helper()
	for _, tc := range []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"text", func(b *bytes.Buffer) error { return RenderText(b, r, TextOptions{}) }},
		{"markdown", func(b *bytes.Buffer) error { return RenderMarkdown(b, r) }},
	} {
		var b bytes.Buffer
		if err := tc.render(&b); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		out := b.String()
		if !utf8.ValidString(out) {
			t.Fatalf("%s output is not UTF-8: %q", tc.name, out)
		}
		for i, c := range out {
			if c != '\n' && safetext.Unsafe(c) {
				t.Fatalf("%s output holds %U at %d: %q", tc.name, c, i, out[max(0, i-40):min(len(out), i+40)])
			}
		}
	}
	var b bytes.Buffer
	if err := RenderText(&b, r, TextOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); safetext.Terminal(out) != out {
		t.Fatalf("coloured text output holds an escape that is not SGR, or a control character: %q", out)
	}
}

// hostileFixture is a bundle whose strings come from the fuzzer: the
// capture reason and host name in the manifest, the process name of a
// listener whose accept queue overflows (so a finding names it), a kernel
// log line and a sysctl's value.
func hostileFixture(t *testing.T, reason, hostname, comm, kmsg, sysctl string) *fixture {
	fx := host(t).small().listeners(func(int) []bundle.Listener {
		l := listener(4, 5, 0)
		l.Comm = comm
		return []bundle.Listener{l}
	}).ramp("TcpExt", "ListenOverflows", 3).ramp("TcpExt", "ListenDrops", 3).flat("Tcp", "PassiveOpens")
	var m map[string]any
	if err := json.Unmarshal(fx.fs[bundle.PathManifest].Data, &m); err != nil {
		t.Fatal(err)
	}
	m["host"].(map[string]any)["hostname"] = hostname
	m["trigger"] = map[string]any{"reason": reason}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	fx.fs[bundle.PathManifest].Data = data
	fx.kmsg("[12.5] TCP: request_sock_TCP: Possible SYN flooding on port 8080. "+kmsg, kmsg)
	fx.sysctl("net.ipv4.tcp_syncookies", sysctl)
	return fx
}

// TestRenderEscapesBundleText is the reported injection: a reason that
// retitles the terminal and clears it, a process name with a bidi override,
// a kernel log line with C1 controls. Every one reaches the report made
// visible, not raw.
func TestRenderEscapesBundleText(t *testing.T) {
	const inject = "x\x1b]0;PWNED\a\x1b[2J"
	r := Analyze(hostileFixture(t, inject, "vm\x1b[31m", "dove\u202ecot`|*", "\u009b6n\x7f", "0\x1b[H").snapshot(), "fixture", Rules())
	f := findingByID(t, r, IDAcceptQueueOverflow)
	if f.Process == nil || f.Process.Comm != "dove\u202ecot`|*" || r.Bundle.Reason != inject {
		t.Fatalf("the report does not carry the hostile strings (process %+v, reason %q): the test would prove nothing", f.Process, r.Bundle.Reason)
	}
	renderedSafe(t, r)
	var b bytes.Buffer
	if err := RenderText(&b, r, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `x\x1b]0;PWNED\x07\x1b[2J`) {
		t.Errorf("the text report does not show the reason's escapes made visible:\n%s", b.String())
	}
}

// TestMarkdownCodeSpans: a process name full of backticks stays inside its
// code span.
func TestMarkdownCodeSpans(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"dovecot", "`dovecot`"},
		{"a`b", "``a`b``"},
		{"`x``", "``` `x`` ```"},
	} {
		if got := mdCode(tc.in); got != tc.want {
			t.Errorf("mdCode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzRenderStrings: whatever a bundle's reason, host name, process name,
// kernel log line and sysctl value hold, no control character reaches the
// text or markdown report.
func FuzzRenderStrings(f *testing.F) {
	f.Add("x\x1b]0;PWNED\a\x1b[2J", "vm", "dovecot", "kernel: eth0: link up", "0")
	f.Add("\u009b2J", "h\u202eost", "a`b|c", "\x00\x7f\r", "1\n")
	f.Fuzz(func(t *testing.T, reason, hostname, comm, kmsg, sysctl string) {
		fx := hostileFixture(t, reason, hostname, comm, kmsg, sysctl)
		s, err := Load(fx.fs)
		if err != nil {
			t.Fatal(err)
		}
		renderedSafe(t, Analyze(s, "fixture\x1b[2J", Rules()))
	})
}

// FuzzRenderBundle: any bytes read as a bundle (bundle.OpenReader, damage
// accepted) and analysed render with no control character.
func FuzzRenderBundle(f *testing.F) {
	for _, p := range []string{"../fixtures/syncookies-2/bundle.tar.zst", "../fixtures/hostile/truncated-half.tar.zst"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := bundle.DefaultLimits()
		lim.Partial = true
		lim.MaxTotal, lim.MaxMemberSize = 64<<20, 16<<20
		b, err := bundle.OpenReader(bytes.NewReader(data), int64(len(data)), lim)
		if err != nil {
			return
		}
		defer b.Close()
		s, err := Load(b)
		if err != nil {
			return
		}
		renderedSafe(t, Analyze(s, "bundle", Rules()))
	})
}
