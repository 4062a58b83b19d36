package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/safetext"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// No command but tui queries the terminal. On a terminal that never
// answers, capture writes nothing to it but the bundle's path, and takes
// its first sample at once; analyze's coloured report holds no query.
func TestNoTerminalQuery(t *testing.T) {
	dir := t.TempDir()
	r := runOnPty(t, time.Minute, "capture", "--sample", "0", "--samples", "1", "--out", dir)
	if r.Code != 0 {
		t.Fatalf("capture on a pty: exit %d: %s", r.Code, r.Stderr)
	}
	path := strings.TrimSuffix(string(r.Stdout), "\r\n")
	if filepath.Dir(path) != dir || !strings.HasSuffix(path, ".tar.zst") || strings.ContainsAny(path, "\r\n\x1b") {
		t.Fatalf("the terminal got %q: want the bundle's path and nothing else", r.Stdout)
	}
	b := openBundle(t, path)
	defer b.Close()
	f, err := b.Open(bundle.SampleFile(0, bundle.SampleTimeFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := bundle.DecodeSampleTime(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	first, err := time.Parse(time.RFC3339Nano, st.Wall)
	if err != nil {
		t.Fatal(err)
	}
	if lag := first.Sub(b.Manifest().Start); lag > 200*time.Millisecond {
		t.Errorf("first sample %s after the capture's start, want within 200ms", lag)
	}

	a := runOnPty(t, time.Minute, "analyze", fixtureBundle)
	if a.Code != 4 || len(a.Stdout) == 0 {
		t.Fatalf("analyze on a pty: exit %d, %d bytes: %s", a.Code, len(a.Stdout), a.Stderr)
	}
	// The pty turns each \n into \r\n.
	if out := strings.ReplaceAll(string(a.Stdout), "\r\n", "\n"); safetext.Terminal(out) != out || bytes.Contains(a.Stdout, []byte("\x1b]")) {
		t.Errorf("analyze wrote an escape sequence that is not a colour to the terminal: %q", out[:min(len(out), 200)])
	}
}

// TestEscapeInjection: a bundle captured with a reason that retitles the
// terminal and clears it (the reported attack) is shown with the escapes
// made visible by analyze (text and markdown) and by tui: the terminal's
// title stays, and the header with the reason stays on screen.
func TestEscapeInjection(t *testing.T) {
	const reason = "x\x1b]0;PWNED\a\x1b[2J"
	dir := t.TempDir()
	r := snapdiag(t, nil, "capture", "--out", dir, "--sample", "0", "--samples", "1", "--reason", reason)
	if r.Code != 0 {
		t.Fatalf("capture: exit %d: %s", r.Code, r.Stderr)
	}
	path := lastLine(r.Stdout)
	if m := openBundle(t, path).Manifest(); m.Trigger.Reason != reason {
		t.Fatalf("the manifest's reason is %q, want the injection: the test would prove nothing", m.Trigger.Reason)
	}
	for _, format := range []string{"text", "markdown"} {
		a := snapdiag(t, nil, "analyze", "--format", format, path)
		if a.Stdout == "" {
			t.Fatalf("analyze --format %s: exit %d, no report: %s", format, a.Code, a.Stderr)
		}
		if i := strings.IndexFunc(a.Stdout, func(r rune) bool { return r != '\n' && safetext.Unsafe(r) }); i >= 0 {
			t.Errorf("analyze --format %s wrote %U at %d: %q", format, a.Stdout[i], i, a.Stdout[max(0, i-30):min(len(a.Stdout), i+30)])
		}
	}

	tm := newTmux(t, 120, 30, testutil.Snapdiag(t), "tui", path)
	scr := tm.waitFor("the findings view", func(s string) bool { return strings.Contains(s, "1 Findings]") })
	if !strings.Contains(scr, `reason: x\x1b]0;PWNED\x07\x1b[2J`) {
		t.Errorf("the header does not show the reason made visible:\n%s", scr)
	}
	if title := tm.run("display-message", "-p", "-t", "smoke", "#{pane_title}"); strings.Contains(title, "PWNED") {
		t.Errorf("the bundle retitled the terminal: pane title %q", title)
	}
	tm.keys("q")
}
