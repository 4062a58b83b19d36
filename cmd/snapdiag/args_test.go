package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestRedactRefusesDanglingSymlink: an OUT that is a symlink to nowhere is
// refused like an existing file, and nothing is written beside it (it once
// wrote the copy under a "-2" name).
func TestRedactRefusesDanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.tar.zst")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), out); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join("..", "..", "fixtures", "three-quarter-rule", "bundle.tar.zst")
	code := Main([]string{"redact", "--key-file", filepath.Join(t.TempDir(), "key"), in, out}, io.Discard, io.Discard)
	if code != exitError {
		t.Errorf("redact into a dangling symlink: exit %d, want %d", code, exitError)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %q, want only the symlink", dir, names)
	}
}

// TestAnalyzeUnreadableWins: analyze of a critical bundle and an unreadable
// one exits 1, as documented: the verdict missed a bundle.
func TestAnalyzeUnreadableWins(t *testing.T) {
	crit := filepath.Join("..", "..", "fixtures", "three-quarter-rule", "bundle.tar.zst")
	if code := Main([]string{"analyze", crit}, io.Discard, io.Discard); code != exitCritical {
		t.Fatalf("analyze %s alone: exit %d, want %d", crit, code, exitCritical)
	}
	junk := filepath.Join(t.TempDir(), "junk.tar.zst")
	if err := os.WriteFile(junk, []byte("not a bundle"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{crit, junk}, {junk, crit}} {
		if code := Main(append([]string{"analyze"}, args...), io.Discard, io.Discard); code != exitError {
			t.Errorf("analyze %v: exit %d, want %d", args, code, exitError)
		}
	}
}

// TestSelftestUsage: a bad flag value is a usage error (exit 2) before
// anything is created, root or not.
func TestSelftestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--format", "yaml"},
		{"--incident", "no-such-incident"},
		{"--without-rule", "no-such-rule"},
		{"extra-argument"},
	} {
		if code := Main(append([]string{"selftest"}, args...), io.Discard, io.Discard); code != exitUsage {
			t.Errorf("selftest %v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestUnknownCommandIsUsage: a mistyped command is a usage error (exit 2),
// as the root's help and snapdiag(1) say, not an error (exit 1) that a
// script would take for a failed capture; also after --version.
func TestUnknownCommandIsUsage(t *testing.T) {
	for _, args := range [][]string{{"analyse"}, {"--version", "x"}} {
		if code := Main(args, io.Discard, io.Discard); code != exitUsage {
			t.Errorf("snapdiag %q: exit %d, want %d", args, code, exitUsage)
		}
	}
	// No command at all is the help, and success.
	if code := Main(nil, io.Discard, io.Discard); code != exitOK {
		t.Errorf("snapdiag: exit %d, want %d", code, exitOK)
	}
}

// TestTargetUsage: two ways of naming a namespace at once, a negative pid,
// or --all-netns beside a named namespace, are usage errors (exit 2) for
// capture and watch, before anything is captured; a name that finds
// nothing is exit 1.
func TestTargetUsage(t *testing.T) {
	for _, cmd := range [][]string{
		{"capture", "--out", t.TempDir()},
		{"watch", "--once", "--check", "exec:true", "--out", t.TempDir()},
	} {
		for _, args := range [][]string{
			{"--netns", "blue", "--pid", "1"},
			{"--pid", "1", "--container", "3f2a9c1b"},
			{"--pid", "-4"},
		} {
			if code := Main(append(append([]string{}, cmd...), args...), io.Discard, io.Discard); code != exitUsage {
				t.Errorf("%s %v: exit %d, want %d", cmd[0], args, code, exitUsage)
			}
		}
		missing := []string{"--netns", "snapdiag-no-such-netns"}
		if code := Main(append(append([]string{}, cmd...), missing...), io.Discard, io.Discard); code != exitError {
			t.Errorf("%s %v: exit %d, want %d", cmd[0], missing, code, exitError)
		}
	}
	// --all-netns is every namespace: naming one beside it is a usage error.
	for _, args := range [][]string{
		{"--all-netns", "--netns", "blue"},
		{"--all-netns", "--pid", "1"},
		{"--container", "3f2a9c1b", "--all-netns"},
	} {
		for _, cmd := range []string{"capture", "watch"} {
			full := append([]string{cmd, "--out", t.TempDir()}, args...)
			if code := Main(full, io.Discard, io.Discard); code != exitUsage {
				t.Errorf("%s %v: exit %d, want %d", cmd, args, code, exitUsage)
			}
		}
	}
	// What watch --all-netns cannot mean for every pod of a node.
	for _, args := range [][]string{
		{"--check", "tcp://127.0.0.1:8080"},
		{"--then", "true"},
		{"--once"},
		{"--webhook", "127.0.0.1:0"},
		{"--max-netns", "0"},
	} {
		full := append([]string{"watch", "--all-netns", "--out", t.TempDir()}, args...)
		if code := Main(full, io.Discard, io.Discard); code != exitUsage {
			t.Errorf("watch --all-netns %v: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code := Main([]string{"watch", "--max-netns", "5", "--check", "exec:true", "--out", t.TempDir()}, io.Discard, io.Discard); code != exitUsage {
		t.Errorf("watch --max-netns without --all-netns: exit %d, want %d", code, exitUsage)
	}
}
