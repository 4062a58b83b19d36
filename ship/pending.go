package ship

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// PendingSuffix is appended to a bundle's file name to name its pending
// sidecar: snapdiag-HOST-TIME.tar.zst.pending.
const PendingSuffix = ".pending"

// PendingFormat is the format of a pending sidecar
// (schema/pending.schema.json).
const PendingFormat = "snapdiag.pending/v1"

// maxPendingBytes bounds a sidecar read back: it is a few hundred bytes
// when snapdiag writes it.
const maxPendingBytes = 64 << 10

// Pending is a pending sidecar's content: the bundle beside it is not yet in
// the store. Its presence is the mark; the fields say where the bundle goes
// and how the attempts went.
type Pending struct {
	Format string `json:"format"`
	// Bundle is the bundle's file name, in the sidecar's directory.
	Bundle string `json:"bundle"`
	// Target is the store's URL (s3://BUCKET/PREFIX or file:///DIR) and Key
	// the object key under it.
	Target string `json:"target"`
	Key    string `json:"key"`
	// Created is when the bundle was marked pending.
	Created time.Time `json:"created"`
	// Attempts counts the uploads tried; LastAttempt and LastError describe
	// the latest (LastError is one line, never a secret).
	Attempts    int        `json:"attempts"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// PendingPath is the sidecar path of the bundle at path.
func PendingPath(bundlePath string) string { return bundlePath + PendingSuffix }

// MarkPending writes the sidecar of the bundle at bundlePath, marking it
// pending for key under t. It is written before any upload starts, so a
// process killed mid-upload leaves the bundle marked for the next run.
func MarkPending(bundlePath string, t Target, key string, now time.Time) error {
	return writePending(bundlePath, Pending{
		Format: PendingFormat, Bundle: filepath.Base(bundlePath),
		Target: t.String(), Key: key, Created: now.UTC(),
	})
}

// ReadPending reads and checks the sidecar of the bundle at bundlePath.
func ReadPending(bundlePath string) (Pending, error) {
	p := PendingPath(bundlePath)
	f, err := os.Open(p)
	if err != nil {
		return Pending{}, fmt.Errorf("read pending sidecar: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPendingBytes+1))
	if err != nil {
		return Pending{}, fmt.Errorf("read %s: %w", p, err)
	}
	return ParsePending(data, filepath.Base(bundlePath))
}

// ParsePending decodes a sidecar of the bundle named name and checks it: its
// format, that it names that bundle, and that its key is safe.
func ParsePending(data []byte, name string) (Pending, error) {
	if len(data) > maxPendingBytes {
		return Pending{}, fmt.Errorf("pending sidecar of %s: larger than %d bytes", name, maxPendingBytes)
	}
	var pd Pending
	if err := json.Unmarshal(data, &pd); err != nil {
		return Pending{}, fmt.Errorf("pending sidecar of %s: %w", name, err)
	}
	switch {
	case pd.Format != PendingFormat:
		return Pending{}, fmt.Errorf("pending sidecar of %s: format %q, want %q", name, pd.Format, PendingFormat)
	case pd.Bundle != name:
		return Pending{}, fmt.Errorf("pending sidecar of %s names another bundle, %q", name, pd.Bundle)
	}
	if err := CheckKey(pd.Key); err != nil {
		return Pending{}, fmt.Errorf("pending sidecar of %s: %w", name, err)
	}
	return pd, nil
}

// IsPending reports whether the bundle at bundlePath has a pending sidecar.
func IsPending(bundlePath string) bool {
	_, err := os.Lstat(PendingPath(bundlePath))
	return err == nil
}

// ClearPending removes the sidecar of the bundle at bundlePath and syncs
// the directory, so that the removal is durable; a missing sidecar is not
// an error.
func ClearPending(bundlePath string) error {
	err := os.Remove(PendingPath(bundlePath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove pending sidecar: %w", err)
	}
	return syncDir(filepath.Dir(bundlePath))
}

// notePending records a failed attempt in the sidecar of the bundle at
// bundlePath, creating it when missing (a push of a bundle that was never
// marked).
func notePending(bundlePath string, t Target, key string, now time.Time, cause error) error {
	if _, err := os.Lstat(bundlePath); errors.Is(err, fs.ErrNotExist) {
		// Retention deleted it while it was being sent: no sidecar
		// for a bundle that is gone.
		return nil
	}
	pd, err := ReadPending(bundlePath)
	if err != nil {
		pd = Pending{Format: PendingFormat, Bundle: filepath.Base(bundlePath), Target: t.String(), Key: key, Created: now.UTC()}
	}
	at := now.UTC()
	pd.Attempts++
	pd.LastAttempt = &at
	pd.LastError = oneLine(cause.Error())
	return writePending(bundlePath, pd)
}

// writePending writes the sidecar atomically: a temporary file in the same
// directory, synced, renamed over the sidecar. A reader sees the old
// sidecar or the new one, never half of one.
func writePending(bundlePath string, pd Pending) error {
	data, err := json.MarshalIndent(pd, "", "  ")
	if err != nil {
		return fmt.Errorf("encode pending sidecar: %w", err)
	}
	return writeAtomic(PendingPath(bundlePath), append(data, '\n'))
}

// writeAtomic writes data to path through a synced temporary file renamed
// into place, then syncs the directory.
func writeAtomic(p string, data []byte) error {
	root, err := os.OpenRoot(filepath.Dir(p))
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	defer root.Close()
	return writeAtomicIn(root, filepath.Base(p), data)
}

// writeAtomicIn is writeAtomic for name inside root.
func writeAtomicIn(root *os.Root, name string, data []byte) error {
	return copyAtomicIn(root, name, bytes.NewReader(data))
}

// copyAtomicIn copies r to name inside root through a synced temporary
// file in the same directory (a dot name no reader lists), renamed into
// place, and then syncs that directory: a reader sees the old file or the
// whole new one, a process killed half way leaves at most the temporary
// file, and once it returns the new name survives a power loss (a rename
// is only durable once its directory is synced).
func copyAtomicIn(root *os.Root, name string, r io.Reader) (err error) {
	dir, base := path.Split(name)
	full := filepath.Join(root.Name(), filepath.FromSlash(name))
	var tmp string
	var f *os.File
	for range 10 {
		tmp = dir + "." + base + ".tmp-" + strconv.FormatUint(rand.Uint64(), 36)
		f, err = root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", full, err)
	}
	defer func() {
		if err != nil {
			root.Remove(tmp)
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err := root.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename into %s: %w", full, err)
	}
	return syncDirIn(root, dir)
}

// syncDirIn fsyncs directory dir of root ("" for the root itself), making
// the renames and removals in it durable.
func syncDirIn(root *os.Root, dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := root.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !unsyncableDir(err) {
		return fmt.Errorf("sync directory %s: %w", filepath.Join(root.Name(), dir), err)
	}
	return nil
}

// unsyncableDir reports whether err is a filesystem saying it cannot
// fsync a directory at all (EINVAL, ENOTSUP: some FUSE and CIFS mounts),
// rather than that the sync failed. The rename before it has landed; on
// such a filesystem there is nothing more to make it durable, and failing
// would report a written object or sidecar as not written.
func unsyncableDir(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP)
}

// syncDir fsyncs the directory at p.
func syncDir(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", p, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !unsyncableDir(err) {
		return fmt.Errorf("sync directory %s: %w", p, err)
	}
	return nil
}

// oneLine keeps the first line of s, so a multi-line error from a store
// cannot break a log line or the sidecar's one-line contract.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// ListPending returns the paths of the bundles in dir that have a pending
// sidecar, oldest name first. A sidecar whose bundle is gone is skipped.
func ListPending(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), PendingSuffix)
		if !ok || !e.Type().IsRegular() || strings.HasPrefix(name, ".") {
			continue
		}
		info, err := os.Lstat(filepath.Join(dir, name))
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		out = append(out, filepath.Join(dir, name))
	}
	return out, nil
}

// CommitMark marks the bundle of one capture pending from inside its
// commit (collectors.Options.BeforeCommit): the sidecar is written, synced
// with its directory, just before the bundle appears, so no kill can leave
// the bundle visible and unmarked, and only this capture's bundle is ever
// marked. A kill between the two leaves a sidecar without a bundle, which
// RemoveOrphanSidecars removes.
type CommitMark struct {
	p *Pusher
	// Path is the bundle's path the sidecar was written for ("" until
	// the commit), Key its object key, and Err what kept the sidecar from
	// being written (the bundle is committed unmarked).
	Path, Key string
	Err       error
}

// CommitMark returns a mark for one capture's bundle, to p's target.
func (p *Pusher) CommitMark() *CommitMark { return &CommitMark{p: p} }

// BeforeCommit writes the sidecar of the bundle about to appear at path,
// keyed by the host m records. It is collectors.Options.BeforeCommit; it
// may be called again with another path when the first was taken.
func (c *CommitMark) BeforeCommit(path string, m *bundle.Manifest) {
	c.Path, c.Key = path, ""
	c.Key, c.Err = c.p.KeyFor(m.Host.Hostname, path)
	if c.Err == nil {
		c.Err = MarkPending(path, c.p.Target, c.Key, c.p.now())
	}
}

// Abandon removes the sidecar of a commit that failed: written for a
// bundle that never appeared.
func (c *CommitMark) Abandon() error {
	if c.Path == "" || c.Err != nil {
		return nil
	}
	if _, err := os.Lstat(c.Path); err == nil {
		return nil
	}
	return ClearPending(c.Path)
}

// RemoveOrphanSidecars removes the pending sidecars in dir whose bundle
// does not exist: a capture killed inside its commit, after CommitMark
// wrote the sidecar and before the bundle appeared. Only a sidecar that
// parses and names the bundle its file name says is removed; anything
// else is not snapdiag's to delete. The caller holds dir's capture lock,
// so no capture is between the two steps. It returns the bundles the
// removed sidecars named.
func RemoveOrphanSidecars(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), PendingSuffix)
		if !ok || !e.Type().IsRegular() || strings.HasPrefix(name, ".") {
			continue
		}
		bundlePath := filepath.Join(dir, name)
		if _, err := os.Lstat(bundlePath); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if !namesItsBundle(bundlePath) {
			continue
		}
		if err := ClearPending(bundlePath); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// namesItsBundle reports whether the sidecar of bundlePath is a pending
// sidecar that names that bundle.
func namesItsBundle(bundlePath string) bool {
	f, err := os.OpenFile(PendingPath(bundlePath), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPendingBytes+1))
	if err != nil {
		return false
	}
	_, err = ParsePending(data, filepath.Base(bundlePath))
	return err == nil
}
