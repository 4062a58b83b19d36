package tui

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"charm.land/bubbles/v2/help"

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
	return bundleWith(t, inject, "vm\x1b[31m\u202e", "dove\x1b]2;cot\a\u009b6n", "<4>[ 1.0] TCP: "+inject+"\r\n", "ESTAB\x1b[2J", "\x1b]0;PWNED\a")
}

// fixtureMembers are the members of the recorded fixture bundleWith starts
// from, read once.
var fixtureMembers = sync.OnceValues(func() (map[string][]byte, error) {
	b, err := bundle.Open("../fixtures/synflood-cookies-off-v4/bundle.tar.zst", bundle.Limits{})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	out := map[string][]byte{}
	err = fs.WalkDir(b, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		out[p], err = fs.ReadFile(b, p)
		return err
	})
	return out, err
})

// bundleWith is the recorded fixture with the given reason, host name,
// listeners' process name, kernel log and one socket table row's state and
// remote address.
func bundleWith(t *testing.T, reason, hostname, comm, kmsg, state, remote string) fstest.MapFS {
	t.Helper()
	members, err := fixtureMembers()
	if err != nil {
		t.Fatal(err)
	}
	out := fstest.MapFS{}
	for p, data := range members {
		out[p] = &fstest.MapFile{Data: data, Mode: 0o600}
	}
	var m map[string]any
	if err := json.Unmarshal(out[bundle.PathManifest].Data, &m); err != nil {
		t.Fatal(err)
	}
	m["host"].(map[string]any)["hostname"] = hostname
	m["trigger"] = map[string]any{"reason": reason}
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
			ls[i].Comm = comm
		}
		f.Data = bundle.EncodeListeners(ls)
	}
	out[bundle.PathKmsg] = &fstest.MapFile{Data: []byte(kmsg), Mode: 0o600}
	row := bundle.AppendSocket(nil, &bundle.Socket{Family: "inet", State: state, Local: "10.0.0.1:8080",
		Remote: remote, Timer: "on\x9b"})
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
		m := started(plain(New(rep, snap, fsys, Options{})), 160, 48)
		press(m, sc.keys...)
		check(sc.name, m.Render())
	}
	for _, s := range []string{`\x1b]0;PWNED\x07`, `dove\x1b]2;cot`, `ESTAB\x1b[`} {
		if !visible[s] {
			t.Errorf("no screen shows %s: the hostile text did not reach the views", s)
		}
	}
}

// screensSafe fails when a screen of the TUI on fsys shows a control
// character.
func screensSafe(t *testing.T, fsys fs.FS) {
	t.Helper()
	snap, err := analyze.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	rep := analyze.Analyze(snap, "fuzz", analyze.Rules())
	// The screens that show the fuzzed strings: the header on each, the
	// findings (the reason, the process), listeners, sockets, the manifest
	// and the kernel log in the files view.
	m := started(plain(New(rep, snap, fsys, Options{})), 100, 30)
	for _, keys := range [][]string{{"1"}, {"2"}, {"5"}, {"8"}, {"7", "/", "k", "m", "s", "g", "enter", "enter"}} {
		press(m, keys...)
		scr := m.Render()
		for _, r := range scr {
			if r != '\n' && safetext.Unsafe(r) {
				t.Fatalf("screen after %q holds %U:\n%q", keys, r, scr)
			}
		}
	}
}

// FuzzViews: whatever a bundle's reason, host name, process names, kernel
// log and socket table hold, no screen of the TUI shows a control character
// (plain styles write no escape sequence, so none may be on a screen).
func FuzzViews(f *testing.F) {
	f.Add(inject, "vm", "dovecot", "kernel: x\n", "ESTAB", "10.0.0.2:5")
	f.Add("\u009b2J", "h\u202e", "a\x7fb", "\x1b[2J\r\n\x00", "\x1b[1m", "\xff")
	f.Fuzz(func(t *testing.T, reason, hostname, comm, kmsg, state, remote string) {
		screensSafe(t, bundleWith(t, reason, hostname, comm, kmsg, state, remote))
	})
}

// plain gives m styles that write no escape sequence at all (the zero
// styles), before its views lay anything out, so any escape on its screens
// came from the bundle and got past the escaping.
func plain(m *Model) *Model {
	m.ctx.Styles, m.help.Styles = Styles{}, help.Styles{}
	return m
}

// TestCounterNamesEscaped: a counter's name comes from the bundle's
// /proc/net files and reaches the counters view; an escape sequence in it
// is shown made visible. analyze.Counter keeps its name unexported, out of
// safetext.Strings' reach, and the screen's last guard (safetext.Terminal)
// lets SGR through, so nothing else would stop "\x1b[8m" (concealed text)
// from reaching the terminal.
func TestCounterNamesEscaped(t *testing.T) {
	const hostile = "Conceal\x1b[8mEd"
	members, err := fixtureMembers()
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for p, data := range members {
		if strings.HasSuffix(p, "/proc/net/netstat") {
			data = bytes.Replace(data, []byte("SyncookiesSent"), []byte(hostile), 1)
		}
		fsys[p] = &fstest.MapFile{Data: data, Mode: 0o600}
	}
	snap, err := analyze.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	m := started(New(analyze.Analyze(snap, "hostile", analyze.Rules()), snap, fsys, Options{}), 160, 48)
	press(m, "3")
	found := false
	for _, row := range m.views[ViewCounters].(*countersView).all {
		if !safetext.Clean(row.name) {
			t.Errorf("counter shown as %q", row.name)
		}
		found = found || strings.Contains(row.name, "Conceal")
	}
	if !found {
		t.Fatal("the hostile counter is not in the counters view: the test proves nothing")
	}
}
