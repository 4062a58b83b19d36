package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
)

// tmuxSession runs the real binary in a tmux pseudo-terminal of its own
// server (-L), so the test touches no other tmux session.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func newTmux(t *testing.T, w, h int, argv ...string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed (CI's .ci/run installs it): no pseudo-terminal for the TUI smoke test")
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("snapdiag-smoke-%d", os.Getpid())}
	cmd := strings.Join(argv, " ")
	s.run("new-session", "-d", "-s", "smoke", "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), cmd+"; sleep 60")
	t.Cleanup(func() { exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (s *tmuxSession) screen() string   { return s.run("capture-pane", "-p", "-t", "smoke") }
func (s *tmuxSession) keys(k ...string) { s.run(append([]string{"send-keys", "-t", "smoke"}, k...)...) }

// waitFor polls the screen until ok holds, and fails after 10 s.
func (s *tmuxSession) waitFor(what string, ok func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		scr := s.screen()
		if ok(scr) {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("screen never showed %s:\n%s", what, scr)
		}
		<-tick.C
	}
}

// selectedLine is the line of the screen under the cursor marker.
func selectedLine(scr string) string {
	for _, l := range strings.Split(scr, "\n") {
		if strings.HasPrefix(l, "› ") {
			return l
		}
	}
	return ""
}

// TestTUISmokeSYNFlood runs `snapdiag tui` on the SYN-flood lab fixture in
// tmux, moves to the syn-queue-overflow finding, opens it and finds the
// listener and the recommended command on the screen.
func TestTUISmokeSYNFlood(t *testing.T) {
	fx := filepath.Join("..", "..", "fixtures", "synflood-cookies-off-v4", "bundle.tar.zst")
	if _, err := os.Stat(fx); err != nil {
		t.Skipf("SYN-flood fixture missing: want %s (recorded by the lab, see fixtures/)", fx)
	}
	s, err := analyze.LoadBundle(fx)
	if err != nil {
		t.Fatal(err)
	}
	rep := analyze.Analyze(s, fx, analyze.Rules())
	var f *analyze.Finding
	for i := range rep.Findings {
		if rep.Findings[i].ID == analyze.IDSynQueueOverflow {
			f = &rep.Findings[i]
		}
	}
	if f == nil {
		t.Fatalf("%s has no syn-queue-overflow finding", fx)
	}
	listener := f.Listener
	if listener == "" {
		// Without listeners.json the listener is named by the kernel's
		// SYN-flood log line: "Possible SYN flooding on port ADDR:PORT."
		for _, e := range f.Evidence {
			if _, rest, ok := strings.Cut(e.Note, "SYN flooding on port "); ok {
				listener, _, _ = strings.Cut(rest, ". ")
			}
		}
	}
	command := ""
	for _, r := range f.Recommendations {
		if len(r.Commands) > 0 {
			command = r.Commands[0]
			break
		}
	}
	if listener == "" || command == "" {
		t.Fatalf("the finding names no listener (%q) or no command (%q)", listener, command)
	}

	tm := newTmux(t, 160, 48, binary, "tui", fx)
	tm.waitFor("the findings view", func(s string) bool { return strings.Contains(s, "1 Findings]") })
	for range 30 {
		if strings.Contains(selectedLine(tm.screen()), analyze.IDSynQueueOverflow) {
			break
		}
		tm.keys("j")
	}
	tm.keys("Enter")
	scr := tm.waitFor("the finding's page", func(s string) bool {
		return strings.Contains(s, "CRITICAL · "+analyze.IDSynQueueOverflow) && strings.Contains(s, "$ "+command)
	})
	if !strings.Contains(scr, listener) {
		t.Errorf("the listener %s is not on the screen:\n%s", listener, scr)
	}
}
