package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/safetext"
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
