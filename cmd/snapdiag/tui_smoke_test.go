package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// tmuxSession runs the real binary in a tmux pseudo-terminal of its own
// server (-L), so the test touches no other tmux session.
type tmuxSession struct {
	t      *testing.T
	socket string
	// cred, when set, runs tmux (its server, so the command too) as
	// another user.
	cred *syscall.Credential
}

func newTmux(t *testing.T, w, h int, argv ...string) *tmuxSession {
	t.Helper()
	return newTmuxAs(t, nil, w, h, argv...)
}

// newTmuxAs is newTmux with tmux and the command run with cred.
func newTmuxAs(t *testing.T, cred *syscall.Credential, w, h int, argv ...string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed (CI's .ci/run installs it): no pseudo-terminal for the TUI smoke test")
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("snapdiag-smoke-%d", os.Getpid()), cred: cred}
	cmd := strings.Join(argv, " ")
	s.run("new-session", "-d", "-s", "smoke", "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), cmd+"; sleep 60")
	t.Cleanup(func() { s.command("kill-server").Run() })
	return s
}

func (s *tmuxSession) command(args ...string) *exec.Cmd {
	cmd := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...)
	if s.cred != nil {
		// A user whose login shell is nologin: tmux runs the command
		// with $SHELL.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
		cmd.Env = append(os.Environ(), "SHELL=/bin/sh", "HOME=/")
	}
	return cmd
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := s.command(args...).CombinedOutput()
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
	var scr string
	testutil.Eventually(s.t, 10*time.Second, "the screen to show "+what, func() (bool, string) {
		scr = s.screen()
		return ok(scr), scr
	})
	return scr
}

func selectedLine(scr string) string {
	for _, l := range strings.Split(scr, "\n") {
		if strings.HasPrefix(l, "› ") {
			return l
		}
	}
	return ""
}

// TestTUISmokeSYNFlood runs `snapdiag tui` on the SYN-flood lab fixture in
// tmux, moves to the syn-queue-overflow finding, opens it and finds on one
// screen the listener the finding names and the command that fixes it. The
// listener comes from what the operator would script against, the report
// of `snapdiag analyze --format json`: the fixture holds listeners.json, so
// the finding must name its listener itself.
func TestTUISmokeSYNFlood(t *testing.T) {
	const fixCommand = "sysctl -w net.ipv4.tcp_syncookies=1"
	fx := filepath.Join("..", "..", "fixtures", "synflood-cookies-off-v4", "bundle.tar.zst")
	if _, err := os.Stat(fx); err != nil {
		t.Skipf("SYN-flood fixture missing: want %s (recorded by the lab, see fixtures/)", fx)
	}
	r := snapdiag(t, nil, "analyze", "--format", "json", fx)
	testutil.ValidateReport(t, []byte(r.Stdout))
	var rep analyze.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("analyze --format json (exit %d): %v\nstderr: %s", r.Code, err, r.Stderr)
	}
	var f *analyze.Finding
	for i := range rep.Findings {
		if rep.Findings[i].ID == analyze.IDSynQueueOverflow {
			f = &rep.Findings[i]
		}
	}
	if f == nil {
		t.Fatalf("the report of %s has no syn-queue-overflow finding", fx)
	}
	if f.Listener == "" {
		t.Fatalf("the syn-queue-overflow finding names no listener although %s holds listeners.json", fx)
	}
	var commands []string
	for _, rc := range f.Recommendations {
		commands = append(commands, rc.Commands...)
	}
	if !slices.Contains(commands, fixCommand) {
		t.Fatalf("the finding does not recommend %q; its commands: %q", fixCommand, commands)
	}

	tm := newTmux(t, 160, 48, testutil.Snapdiag(t), "tui", fx)
	scr := tm.waitFor("the findings view", func(s string) bool {
		return strings.Contains(s, "1 Findings]") && selectedLine(s) != ""
	})
	for n := 0; !strings.Contains(selectedLine(scr), analyze.IDSynQueueOverflow); n++ {
		if n == len(rep.Findings) {
			t.Fatalf("no row of the findings view is %s:\n%s", analyze.IDSynQueueOverflow, scr)
		}
		prev := selectedLine(scr)
		tm.keys("j")
		scr = tm.waitFor("the cursor on the next finding", func(s string) bool { return selectedLine(s) != prev })
	}
	tm.keys("Enter")
	header := "CRITICAL · " + analyze.IDSynQueueOverflow + " · listener " + f.Listener
	tm.waitFor("the finding's page", func(s string) bool { return strings.Contains(s, header) })
	// The evidence may fill the first page; the remedy is at the bottom.
	tm.keys("G")
	tm.waitFor("the finding's remedy", func(s string) bool { return strings.Contains(s, "$ "+fixCommand) })
}
