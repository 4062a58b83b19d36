package ship

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/snapdiag/snapdiag/bundle"
)

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
