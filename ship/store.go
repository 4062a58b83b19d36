package ship

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// open checks key and opens the store's directory as an os.Root: every
// name below is resolved inside it, so no symbolic link in the store (a
// host directory replaced by a link to /etc) can steer a read or a write
// outside it. The directory itself, the user's choice, is created when
// create is set. The caller closes the root.
func (s fileStore) open(key string, create bool) (*os.Root, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if create {
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return nil, fmt.Errorf("create store %s: %w", s.dir, err)
		}
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", s.dir, err)
	}
	// os.Root still follows a link that stays inside the store; a link
	// among the key's directories is refused all the same, so that one
	// host's directory can never be made to hold another's objects.
	if err := noLinkedDirs(root, key); err != nil {
		root.Close()
		return nil, err
	}
	return root, nil
}

// ErrStoreLink is wrapped by errors about a file store whose tree holds a
// symbolic link where a key's directory or object should be.
var ErrStoreLink = errors.New("symbolic link in the store")

// noLinkedDirs returns an error wrapping ErrStoreLink when a directory of
// key (PREFIX/HOST) exists in root as anything but a real directory. A
// directory not there yet is fine: Put creates it.
func noLinkedDirs(root *os.Root, key string) error {
	dir := path.Dir(key)
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		info, err := root.Lstat(dir[:i])
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stat %s in the store: %w", dir[:i], err)
		}
		if !info.IsDir() {
			return fmt.Errorf("%w: %s is not a directory", ErrStoreLink, path.Join(root.Name(), dir[:i]))
		}
	}
	return nil
}

func (s fileStore) Stat(_ context.Context, key string) (Object, bool, error) {
	root, err := s.open(key, false)
	if errors.Is(err, fs.ErrNotExist) {
		return Object{}, false, nil
	}
	if err != nil {
		return Object{}, false, err
	}
	defer root.Close()
	p := filepath.Join(s.dir, filepath.FromSlash(key))
	info, err := root.Lstat(key)
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
	// The sidecar is read only when it is a regular file itself: a link
	// there could point at any file of the store.
	if si, err := root.Lstat(key + SHA256Suffix); err == nil && si.Mode().IsRegular() {
		if data, err := readPrefix(root, key+SHA256Suffix, 64); err == nil && hexSum(string(data)) {
			obj.SHA256 = string(data)
		}
	}
	return obj, true, nil
}

// readPrefix reads at most n bytes from the start of name in root.
func readPrefix(root *os.Root, name string, n int) ([]byte, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := io.ReadFull(f, buf)
	return buf[:m], err
}

// Put writes the checksum sidecar first, then the object, each through a
// temporary file renamed into place: a process killed half way leaves at
// most a temporary file or a sidecar without its object, never a partial
// object under the final name.
func (s fileStore) Put(_ context.Context, key string, r io.ReaderAt, size int64, sum string) error {
	root, err := s.open(key, true)
	if err != nil {
		return err
	}
	defer root.Close()
	dir := path.Dir(key)
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s in %s: %w", dir, s.dir, err)
	}
	// Again after creating: a link put in place of a directory meanwhile
	// is refused before anything is written through it.
	if err := noLinkedDirs(root, key); err != nil {
		return err
	}
	if err := writeAtomicIn(root, key+SHA256Suffix, []byte(sum+"  "+path.Base(key)+"\n")); err != nil {
		return err
	}
	return copyAtomicIn(root, key, io.NewSectionReader(r, 0, size))
}

// sizeString is a size for user metadata.
func sizeString(n int64) string { return strconv.FormatInt(n, 10) }

// hexSum reports whether s is a lower-case hex SHA-256.
func hexSum(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}
