package tui

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/safetext"
)

// inject retitles the terminal and clears the screen when printed raw.
const inject = "x\x1b]0;PWNED\a\x1b[2J"

// hostileBundle is a recorded fixture whose strings were replaced by
// escape sequences: the capture reason, the host name, every listener's
// process name, a kernel log line and a socket table row.
func hostileBundle(t *testing.T) fstest.MapFS {
	t.Helper()
	b, err := bundle.Open("../fixtures/synflood-cookies-off-v4/bundle.tar.zst", bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out := fstest.MapFS{}
	err = fs.WalkDir(b, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(b, p)
		out[p] = &fstest.MapFile{Data: data, Mode: 0o600}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out[bundle.PathManifest].Data, &m); err != nil {
		t.Fatal(err)
	}
	m["host"].(map[string]any)["hostname"] = "vm\x1b[31m\u202e"
	m["trigger"] = map[string]any{"reason": inject}
	if out[bundle.PathManifest].Data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	for p, f := range out {
		if !strings.HasSuffix(p, "/"+bundle.SampleListeners) {
			continue
		}
		ls, err := bundle.DecodeListeners(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatal(err)
		}
		for i := range ls {
			ls[i].Comm = "dove\x1b]2;cot\a\u009b6n"
		}
		f.Data = bundle.EncodeListeners(ls)
	}
	out[bundle.PathKmsg] = &fstest.MapFile{Data: []byte("<4>[ 1.0] TCP: " + inject + "\r\n"), Mode: 0o600}
	row := bundle.AppendSocket(nil, &bundle.Socket{Family: "inet", State: "ESTAB\x1b[2J", Local: "10.0.0.1:8080",
		Remote: "\x1b]0;PWNED\a", Timer: "on\x9b"})
	out[bundle.PathSocketsTCP] = &fstest.MapFile{Data: row, Mode: 0o600}
	return out
}

// TestViewsEscapeBundleText: no screen of the TUI on a hostile bundle holds
// an escape sequence or control character from it (the renderer here has
// no colours, so any ESC on screen came from the bundle), and the reason
// and the kernel log line are shown made visible.
func TestViewsEscapeBundleText(t *testing.T) {
	fsys := hostileBundle(t)
	snap, err := analyze.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	rep := analyze.Analyze(snap, "hostile", analyze.Rules())
	if rep.Bundle.Reason != inject {
		t.Fatalf("the report's reason is %q: the test would prove nothing", rep.Bundle.Reason)
	}
	visible := map[string]bool{}
	check := func(name, scr string) {
		t.Helper()
		for _, r := range scr {
			if r != '\n' && safetext.Unsafe(r) {
				t.Errorf("%s screen holds %U:\n%q", name, r, scr)
				return
			}
		}
		for _, s := range []string{`\x1b]0;PWNED\x07`, `dove\x1b]2;cot`, `ESTAB\x1b[`} {
			if strings.Contains(scr, s) {
				visible[s] = true
			}
		}
	}
	for _, sc := range append(goldenScreens(), struct {
		name string
		keys []string
	}{"kmsg", []string{"7", "/", "k", "m", "s", "g", "enter", "enter"}}) {
		m := started(New(rep, snap, fsys, Options{Renderer: asciiRenderer()}), 160, 48)
		press(m, sc.keys...)
		check(sc.name, m.View())
	}
	for _, s := range []string{`\x1b]0;PWNED\x07`, `dove\x1b]2;cot`, `ESTAB\x1b[`} {
		if !visible[s] {
			t.Errorf("no screen shows %s: the hostile text did not reach the views", s)
		}
	}
}
