package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// promptly bounds a command that must refuse its input at once: a command
// blocked on a named pipe is killed after it and fails the test.
const promptly = 20 * time.Second

// fixtureBundle is a small recorded bundle with findings.
const fixtureBundle = "../../fixtures/synflood-cookies-off-v4/bundle.tar.zst"

// unpack writes the members of the bundle at path into a new directory, as
// tar --zstd -xf would.
func unpack(t *testing.T, path string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range testutil.ReadBundle(t, path) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

// A named pipe where a bundle, a bundle's member or a key file is expected
// is refused at once: open(2) of a pipe without a writer would block
// forever. analyze and redact exit 1 (a bundle could not be read); tui the
// same, before it takes the terminal.
func TestNamedPipeRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "bundle.tar.zst")
	mkfifo(t, fifo)
	key := filepath.Join(dir, "redact.key")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"analyze", []string{"analyze", fifo}},
		{"analyze json", []string{"analyze", "--format", "json", fifo}},
		{"redact", []string{"redact", "--key-file", key, fifo, filepath.Join(dir, "out.tar.zst")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testutil.Run(t, promptly, "", nil, append([]string{testutil.Snapdiag(t)}, tc.args...)...)
			if r.Code != exitError || r.Stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q: want exit %d and nothing on stdout", r.Code, r.Stdout, r.Stderr, exitError)
			}
		})
	}
	t.Run("tui", func(t *testing.T) {
		r := runOnPty(t, promptly, "tui", fifo)
		if r.Code != exitError || len(r.Stdout) != 0 {
			t.Errorf("tui on a named pipe: exit %d, terminal got %q, stderr %q: want exit %d and nothing drawn", r.Code, r.Stdout, r.Stderr, exitError)
		}
	})
	t.Run("key file", func(t *testing.T) {
		kfifo := filepath.Join(t.TempDir(), "fifo.key")
		mkfifo(t, kfifo)
		r := testutil.Run(t, promptly, "", nil, testutil.Snapdiag(t), "redact", "--key-file", kfifo, fixtureBundle, t.TempDir())
		if r.Code != exitError || r.Stdout != "" {
			t.Errorf("redact with a named pipe as key: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
		}
	})
	// An unpacked bundle with pipes in place of its members: the manifest
	// (read whole) and the socket table (streamed) are both refused, and
	// analyze reports on the rest as it does for any missing member.
	t.Run("unpacked members", func(t *testing.T) {
		want := testutil.Run(t, promptly, "", nil, testutil.Snapdiag(t), "analyze", "--format", "json", unpack(t, fixtureBundle))
		if want.Code != 4 {
			t.Fatalf("analyze of the unpacked fixture: exit %d: %s", want.Code, want.Stderr)
		}
		u := unpack(t, fixtureBundle)
		mkfifo(t, filepath.Join(u, filepath.FromSlash(bundle.PathSocketsTCP)))
		mkfifo(t, filepath.Join(u, filepath.FromSlash(bundle.PathKmsg)))
		r := testutil.Run(t, promptly, "", nil, testutil.Snapdiag(t), "analyze", "--format", "json", u)
		if r.Code != want.Code {
			t.Errorf("analyze with pipes for members: exit %d, want %d as without them; stderr %q", r.Code, want.Code, r.Stderr)
		}
		// Without its manifest the bundle still has its samples: analyze
		// reads them, as for an unpacked bundle whose manifest was lost.
		mkfifo(t, filepath.Join(u, bundle.PathManifest))
		if r := testutil.Run(t, promptly, "", nil, testutil.Snapdiag(t), "analyze", u); r.Code != want.Code {
			t.Errorf("analyze with a pipe for the manifest: exit %d, want %d; stderr %q", r.Code, want.Code, r.Stderr)
		}
	})
}
