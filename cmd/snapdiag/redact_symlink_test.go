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
