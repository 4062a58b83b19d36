package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdiag/snapdiag/redact"
)

// TestRedactCommand runs snapdiag redact as a user would: the key is
// created with mode 0600, the copy is written with mode 0600 under a name
// without the host's, analyze exits the same on both, and an existing OUT
// is refused.
func TestRedactCommand(t *testing.T) {
	in := "../../fixtures/synflood-cookies-off-v4/bundle.tar.zst"
	dir := t.TempDir()
	key := filepath.Join(dir, "keys", "incident.key")
	out := t.TempDir()
	r := snapdiag(t, nil, "redact", "--key-file", key, in, out)
	if r.Code != 0 {
		t.Fatalf("redact exit %d: %s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "created redaction key") {
		t.Errorf("stderr does not say the key was created: %q", r.Stderr)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v", err)
	}
	path := lastLine(r.Stdout)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || filepath.Dir(path) != out {
		t.Fatalf("redacted bundle %q: %v", path, err)
	}
	b := openBundle(t, path)
	defer b.Close()
	info, ok := redact.ManifestInfo(b.Manifest())
	k, _, _ := redact.LoadOrCreateKey(key)
	if !ok || info.Fingerprint != k.Fingerprint() {
		t.Errorf("manifest redaction info %+v", info)
	}
	if strings.Contains(filepath.Base(path), "-vm-") {
		t.Errorf("file name %s holds the host name", path)
	}
	orig, red := snapdiag(t, nil, "analyze", in), snapdiag(t, nil, "analyze", path)
	if orig.Code != red.Code || orig.Code < 3 {
		t.Errorf("analyze exits %d on the original, %d on the redacted copy", orig.Code, red.Code)
	}

	file := filepath.Join(out, "copy.tar.zst")
	if r := snapdiag(t, nil, "redact", "--key-file", key, in, file); r.Code != 0 {
		t.Fatalf("redact into a file: exit %d: %s", r.Code, r.Stderr)
	}
	if r := snapdiag(t, nil, "redact", "--key-file", key, in, file); r.Code != 1 || !strings.Contains(r.Stderr, "exist") {
		t.Errorf("redact over an existing file: exit %d, %q", r.Code, r.Stderr)
	}
	if r := snapdiag(t, nil, "redact", "--key-file", key, path, t.TempDir()); r.Code != 1 || !strings.Contains(r.Stderr, "already redacted") {
		t.Errorf("redact a redacted bundle: exit %d, %q", r.Code, r.Stderr)
	}
}

// TestRedactMissingInputMakesNoKey: redact of an input that is not there
// fails (exit 1) before it creates a key.
func TestRedactMissingInputMakesNoKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "redact.key")
	if r := snapdiag(t, nil, "redact", "--key-file", key, filepath.Join(dir, "missing.tar.zst"), t.TempDir()); r.Code != 1 {
		t.Errorf("redact of a missing bundle: exit %d, want 1: %s", r.Code, r.Stderr)
	}
	if _, err := os.Stat(key); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("key file after a failed redact: %v, want none", err)
	}
}

// TestCaptureRedact captures with --redact: the directory then holds the
// redacted bundle only, and no unredacted copy.
func TestCaptureRedact(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(t.TempDir(), "k")
	r := snapdiag(t, nil, "capture", "--out", dir, "--samples", "1", "--interval", "100ms", "--sample", "0",
		"--redact", "--key-file", key, "-q")
	if r.Code != 0 {
		t.Fatalf("capture --redact exit %d: %s", r.Code, r.Stderr)
	}
	path := lastLine(r.Stdout)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	bundles := 0
	for _, n := range names {
		if strings.HasSuffix(n, ".tar.zst") {
			bundles++
		}
		// The bundle Writer's temporary names: staging folders, archives.
		if strings.HasPrefix(n, ".snapdiag-tmp-") {
			t.Errorf("temporary file left: %s", n)
		}
	}
	if bundles != 1 || filepath.Dir(path) != dir {
		t.Fatalf("directory holds %v, capture printed %s", names, path)
	}
	b := openBundle(t, path)
	defer b.Close()
	if _, ok := redact.ManifestInfo(b.Manifest()); !ok {
		t.Error("the captured bundle is not redacted")
	}
	host, _ := os.Hostname()
	if h := b.Manifest().Host.Hostname; h == host || !strings.HasPrefix(h, "host-") {
		t.Errorf("manifest hostname %q", h)
	}
	if len(host) >= 2 && strings.Contains(path, host) {
		t.Errorf("bundle name %s holds the host name", path)
	}
}
