package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// completion is what cobra's hidden __complete command answers: the words
// offered (descriptions dropped) and the directive telling the shell what
// else to do (offer files, only some extensions, only directories, nothing).
type completion struct {
	Words     []string
	Directive cobra.ShellCompDirective
}

// complete runs `snapdiag __complete ARGS...` in-process, as the shell
// scripts do on <TAB>, and reads its answer.
func complete(t *testing.T, args ...string) completion {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := Main(append([]string{cobra.ShellCompRequestCmd}, args...), &stdout, &stderr); code != exitOK {
		t.Fatalf("__complete %q: exit %d\n%s", args, code, stderr.String())
	}
	var c completion
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		if d, ok := strings.CutPrefix(line, ":"); ok {
			n, err := strconv.Atoi(d)
			if err != nil {
				t.Fatalf("__complete %q: directive line %q", args, line)
			}
			c.Directive = cobra.ShellCompDirective(n)
			return c
		}
		word, _, _ := strings.Cut(line, "\t")
		c.Words = append(c.Words, word)
	}
	t.Fatalf("__complete %q: no directive line in %q", args, stdout.String())
	return c
}

func TestCompletion(t *testing.T) {
	const (
		noFiles = cobra.ShellCompDirectiveNoFileComp
		ext     = cobra.ShellCompDirectiveFilterFileExt
		dirs    = cobra.ShellCompDirectiveFilterDirs
		files   = cobra.ShellCompDirectiveDefault
	)
	bundles := []string{"tar.zst"}
	for _, tc := range []struct {
		args []string
		want completion
	}{
		{[]string{"analyze", "--format", ""}, completion{[]string{"text", "json", "markdown"}, noFiles}},
		{[]string{"analyze", "--format", "m"}, completion{[]string{"markdown"}, noFiles}},
		{[]string{"analyze", "--min-severity", ""}, completion{[]string{"info", "warning", "critical"}, noFiles}},
		{[]string{"watch", "--log-format", ""}, completion{[]string{"text", "json"}, noFiles}},
		{[]string{"watch", "--log-level", ""}, completion{[]string{"debug", "info", "warn", "error"}, noFiles}},
		{[]string{"capture", "--priority", ""}, completion{[]string{"low", "normal"}, noFiles}},
		{[]string{"capture", "--out", ""}, completion{nil, dirs}},
		{[]string{"watch", "--out", ""}, completion{nil, dirs}},
		{[]string{"top", "--out", ""}, completion{nil, dirs}},
		{[]string{"top", "--every", ""}, completion{nil, noFiles}},
		{[]string{"top", ""}, completion{nil, noFiles}},
		{[]string{"capture", "--key-file", ""}, completion{nil, files}},
		{[]string{"redact", "--key-file", ""}, completion{nil, files}},
		{[]string{"capture", "--reason", ""}, completion{nil, noFiles}},
		{[]string{"capture", "--deadline", ""}, completion{nil, noFiles}},
		{[]string{"analyze", ""}, completion{bundles, ext}},
		{[]string{"analyze", "a.tar.zst", ""}, completion{bundles, ext}},
		{[]string{"tui", ""}, completion{bundles, ext}},
		{[]string{"tui", "a.tar.zst", ""}, completion{nil, noFiles}},
		{[]string{"redact", ""}, completion{bundles, ext}},
		{[]string{"redact", "a.tar.zst", ""}, completion{nil, files}},
		{[]string{"redact", "a.tar.zst", "out", ""}, completion{nil, noFiles}},
		{[]string{"capture", ""}, completion{nil, noFiles}},
		{[]string{"version", ""}, completion{nil, noFiles}},
		{[]string{"selftest", "--format", ""}, completion{[]string{"text", "json"}, noFiles}},
		{[]string{"selftest", "--incident", "syn"}, completion{[]string{"syn-flood-cookies-off", "syn-flood-cookies-on"}, noFiles}},
		{[]string{"selftest", ""}, completion{nil, noFiles}},
		{[]string{"schema", "s"}, completion{[]string{"sample-time", "socket-summary", "socket", "selftest"}, noFiles}},
		// schema takes one NAME: nothing after it, not file names.
		{[]string{"schema", "report", ""}, completion{nil, noFiles}},
		// cobra's own completion command is there to install.
		{[]string{"completion", ""}, completion{[]string{"bash", "fish", "powershell", "zsh"}, noFiles}},
	} {
		if diff := cmp.Diff(tc.want, complete(t, tc.args...)); diff != "" {
			t.Errorf("snapdiag __complete %q (-want +got):\n%s", tc.args, diff)
		}
	}
}

// TestEveryFlagCompletes: every visible flag that takes a value says how it
// completes, so a new string flag is not left offering file names.
func TestEveryFlagCompletes(t *testing.T) {
	for _, c := range visibleCommands() {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Deprecated != "" || f.NoOptDefVal != "" {
				return
			}
			if _, ok := c.GetFlagCompletionFunc(f.Name); !ok {
				t.Errorf("%s --%s has no completion: add it to flagCompletions", c.CommandPath(), f.Name)
			}
		})
	}
}

// TestCompletedValuesAccepted runs the real binary with every value a flag
// completes to and checks the command takes it (no usage error), and that
// it does refuse a value not offered, so the lists cannot drift from the
// commands' checks.
func TestCompletedValuesAccepted(t *testing.T) {
	// Command lines that succeed quickly as they stand, by command.
	base := map[string][]string{
		"analyze": {filepath.Join("..", "..", "fixtures", "healthy-busy", "bundle.tar.zst")},
		"watch":   {"--once", "--check", "exec:true", "--out", t.TempDir()},
		"capture": {"--quiet", "--samples", "1", "--sample", "0", "--out", t.TempDir()},
		"diff": {filepath.Join("..", "..", "fixtures", "healthy-busy", "bundle.tar.zst"),
			filepath.Join("..", "..", "fixtures", "risky-sysctls", "bundle.tar.zst")},
		"fleet": {"--cache-dir", t.TempDir(), filepath.Join("..", "..", "fixtures", "healthy-busy")},
	}
	for _, fc := range flagCompletions {
		values, directive := fc.complete(nil, nil, "")
		if len(values) == 0 || directive != cobra.ShellCompDirectiveNoFileComp {
			continue // files, directories or free text
		}
		if fc.flag == "netns" || fc.flag == "container" {
			// The values are the live system's namespaces and
			// containers, to capture, not words a check accepts:
			// TestTargetCompletion checks them.
			continue
		}
		if fc.cmd == "selftest" {
			// A run takes seconds per value: TestSelftestUsage checks
			// that --format refuses what is not offered, and selftest's
			// tests that every incident name Names offers is one it runs.
			continue
		}
		args, ok := base[fc.cmd]
		if !ok {
			t.Fatalf("%s --%s completes to values: add a command line for %s to this test", fc.cmd, fc.flag, fc.cmd)
		}
		for _, v := range append(values, "bogus") {
			word, _, _ := strings.Cut(v, "\t")
			r := snapdiag(t, nil, append([]string{fc.cmd, "--" + fc.flag, word}, args...)...)
			if got := r.Code == exitUsage; got != (word == "bogus") {
				t.Errorf("snapdiag %s --%s %s: exit %d\n%s", fc.cmd, fc.flag, word, r.Code, r.Stderr)
			}
		}
	}
}

// TestBashCompletion runs the bash script `snapdiag completion bash` prints
// the way bash does on <TAB> (COMP_WORDS, COMP_CWORD, then the completion
// function) with bash-completion loaded, as on an operator's machine.
func TestBashCompletion(t *testing.T) {
	const bashCompletion = "/usr/share/bash-completion/bash_completion"
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	if _, err := os.Stat(bashCompletion); err != nil {
		t.Skipf("bash-completion is not installed (%v); TestCompletion covered __complete", err)
	}
	bin := testutil.Snapdiag(t)
	r := snapdiag(t, nil, "completion", "bash")
	if r.Code != exitOK {
		t.Fatalf("snapdiag completion bash: exit %d\n%s", r.Code, r.Stderr)
	}
	work := t.TempDir()
	script := filepath.Join(work, "snapdiag.bash")
	if err := os.WriteFile(script, []byte(r.Stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	// What the bundle argument should offer: bundles and directories.
	for _, name := range []string{"a.tar.zst", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(work, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(work, "unpacked"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The words of the command line, the last being the one completed;
	// COMP_WORDS[0] is the binary the script asks for completions.
	const driver = `source "$1"; source "$2"; shift 2
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
__start_snapdiag 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"`
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"analyze", "--format", ""}, []string{"json", "markdown", "text"}},
		{[]string{"analyze", "--format", "j"}, []string{"json"}},
		{[]string{"analyze", "--min-severity", "c"}, []string{"critical"}},
		{[]string{"watch", "--log-format", ""}, []string{"json", "text"}},
		{[]string{"analyze", ""}, []string{"a.tar.zst", "unpacked"}},
		{[]string{"capture", "--out", ""}, []string{"unpacked"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.WaitLimit)
		args := append([]string{"--norc", "--noprofile", "-c", driver, "bash", bashCompletion, script, bin}, tc.words...)
		cmd := exec.CommandContext(ctx, bash, args...)
		cmd.Dir = work
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("bash completion of %q: %v", tc.words, err)
		}
		got := strings.Fields(string(out))
		slices.Sort(got)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("bash completion of snapdiag %q (-want +got):\n%s", tc.words, diff)
		}
	}
}
