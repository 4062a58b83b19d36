package ship

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Object is what a store says about an object: its size and the SHA-256
// recorded with it ("" when it has none).
type Object struct {
	Size   int64
	SHA256 string
}

// Store is one place bundles go.
type Store interface {
	// Stat returns the object under key; ok is false when there is none.
	Stat(ctx context.Context, key string) (obj Object, ok bool, err error)
	// Put stores size bytes of r under key with its SHA-256 (hex). No
	// object under key may be visible before all of it is.
	Put(ctx context.Context, key string, r io.ReaderAt, size int64, sum string) error
}

// fileStore is a file:///DIR target: the object is DIR/KEY, its metadata
// the sidecar DIR/KEY.sha256 in sha256sum's format ("HEX  NAME"), so
// `sha256sum -c` checks a copy and a reader lists checksums without reading
// bundles.
type fileStore struct{ dir string }

// SHA256Suffix names a file target's checksum sidecar: KEY.sha256.
const SHA256Suffix = ".sha256"

// NewFileStore returns the store of a file:///DIR target.
func NewFileStore(dir string) Store { return fileStore{dir: dir} }

func (s fileStore) path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

func (s fileStore) Stat(_ context.Context, key string) (Object, bool, error) {
	p, err := s.path(key)
	if err != nil {
		return Object{}, false, err
	}
	info, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Object{}, false, nil
	}
	if err != nil {
		return Object{}, false, fmt.Errorf("stat %s: %w", p, err)
	}
	if !info.Mode().IsRegular() {
		return Object{}, false, fmt.Errorf("stat %s: not a regular file", p)
	}
	obj := Object{Size: info.Size()}
	data, err := os.ReadFile(p + SHA256Suffix)
	if err == nil && len(data) >= 64 && hexSum(string(data[:64])) {
		obj.SHA256 = string(data[:64])
	}
	return obj, true, nil
}

// Put writes the checksum sidecar first, then the object, each through a
// temporary file renamed into place: a process killed half way leaves at
// most a temporary file or a sidecar without its object, never a partial
// object under the final name.
func (s fileStore) Put(_ context.Context, key string, r io.ReaderAt, size int64, sum string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	if err := writeAtomic(p+SHA256Suffix, []byte(sum+"  "+filepath.Base(p)+"\n")); err != nil {
		return err
	}
	return copyAtomic(p, io.NewSectionReader(r, 0, size))
}

// sizeString is a size for user metadata.
func sizeString(n int64) string { return strconv.FormatInt(n, 10) }

// hexSum reports whether s is a lower-case hex SHA-256.
func hexSum(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}
