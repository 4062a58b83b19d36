package redact

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/snapdiag/snapdiag/bundle"
)

// Scheme names the pseudonymisation this package applies. It changes whenever
// a key would map some address or name differently, so two bundles can share
// pseudonyms only when both their scheme and their key fingerprint match.
const Scheme = "snapdiag-redact/1"

// KeySize is the size of a key LoadOrCreateKey creates.
const KeySize = 32

// minKeySize bounds a key file the operator brings: shorter secrets can be
// guessed, and with them every pseudonym reversed by trying addresses.
const minKeySize = 16

// Key is the operator's secret: every pseudonym is derived from it with
// HMAC-SHA256. It never goes into a bundle; its Fingerprint does.
type Key struct{ b []byte }

// NewKey makes a Key of secret, which must be at least 16 bytes.
func NewKey(secret []byte) (Key, error) {
	if len(secret) < minKeySize {
		return Key{}, fmt.Errorf("redaction key: %d bytes, need at least %d", len(secret), minKeySize)
	}
	return Key{b: append([]byte(nil), secret...)}, nil
}

// LoadOrCreateKey reads the key in path, or creates it with KeySize random
// bytes and mode 0600 when it does not exist (created then reports true). A
// key file that others can read is refused: whoever holds the key can undo
// the pseudonyms of every address they can guess.
func LoadOrCreateKey(path string) (k Key, created bool, err error) {
	data, err := readKeyFile(path)
	if err == nil {
		k, err = NewKey(data)
		if err != nil {
			return Key{}, false, fmt.Errorf("read %s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Key{}, false, err
	}
	secret := make([]byte, KeySize)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, false, fmt.Errorf("create redaction key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, false, fmt.Errorf("create redaction key: %w", err)
	}
	// O_EXCL: two processes creating the key at once must not end with two
	// different keys, each believed to be the one in the file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKey(path)
	}
	if err != nil {
		return Key{}, false, fmt.Errorf("create redaction key: %w", err)
	}
	_, err = f.Write(secret)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return Key{}, false, fmt.Errorf("write %s: %w", path, err)
	}
	k, err = NewKey(secret)
	return k, true, err
}

func readKeyFile(path string) ([]byte, error) {
	// A named pipe given as --key-file must not block the command.
	f, fi, err := bundle.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("read %s: key file is accessible by others (mode %04o); chmod 600 it", path, fi.Mode().Perm())
	}
	if fi.Size() > 4096 {
		return nil, fmt.Errorf("read %s: %d bytes is not a key file", path, fi.Size())
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// derive returns the subkey for one use of the key, so that the pseudonym of
// an IPv4 address cannot be compared with that of a MAC address or a name.
func (k Key) derive(label string) []byte {
	m := hmac.New(sha256.New, k.b)
	m.Write([]byte(Scheme + " " + label))
	return m.Sum(nil)
}

// Fingerprint identifies the key without revealing it: the first 8 bytes of
// HMAC(key, "snapdiag-fingerprint"), in hex. Two bundles redacted with the
// same key have the same fingerprint, so their pseudonyms can be compared.
func (k Key) Fingerprint() string {
	m := hmac.New(sha256.New, k.b)
	m.Write([]byte("snapdiag-fingerprint"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}
