package redact

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "redact.key")
	k1, created, err := LoadOrCreateKey(p)
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != KeySize {
		t.Errorf("key file mode %v size %d, want 0600 and %d bytes", fi.Mode().Perm(), fi.Size(), KeySize)
	}
	k2, created, err := LoadOrCreateKey(p)
	if err != nil || created {
		t.Fatalf("load: %v, created %v", err, created)
	}
	if k1.Fingerprint() != k2.Fingerprint() {
		t.Error("the key read back is not the key created")
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(p); err == nil {
		t.Error("a key file others can read was accepted")
	}
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("tiny"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(short); err == nil {
		t.Error("a 4-byte key was accepted")
	}
}
