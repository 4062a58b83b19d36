package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/ship"
	"golang.org/x/sys/unix"
)

// ErrLowSpace is returned when the output directory's filesystem has less
// free space than Retention.MinFree: a capture would fill the disk the
// service itself needs.
var ErrLowSpace = errors.New("not enough free space")

// Retention bounds the bundles kept in an output directory. Zero fields do
// not bound.
type Retention struct {
	// Keep is how many bundles of this host are kept, newest first.
	Keep int
	// MaxBytes bounds the total size of this host's bundles.
	MaxBytes int64
	// MinFree is the free space (for an unprivileged user) below which no
	// capture is written.
	MinFree int64
}

// BundleFile is one bundle found in an output directory.
type BundleFile struct {
	Name string
	Size int64
	// Time is the capture time the name carries; Seq is the -N suffix of a
	// second bundle in the same second (1 for none).
	Time time.Time
	Seq  int
}

// bundleTimeLayout is the time in a bundle's name (bundle.FileName).
const bundleTimeLayout = "20060102T150405Z"

// BundlePattern matches the names bundle.FileName gives host's bundles, with
// the -N suffix of a same-second bundle: snapdiag-<host>-<yyyymmddThhmmssZ>[-N].tar.zst.
func BundlePattern(host string) *regexp.Regexp {
	// FileName sanitizes the host name; take its own spelling from it.
	name := bundle.FileName(host, time.Time{})
	prefix := strings.TrimSuffix(name, time.Time{}.UTC().Format(bundleTimeLayout)+".tar.zst")
	return regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `([0-9]{8}T[0-9]{6}Z)(?:-([0-9]{1,6}))?\.tar\.zst$`)
}

// ListBundles returns host's bundles in dir, newest first: regular files whose
// names match BundlePattern. Symbolic links, directories, other hosts'
// bundles and every other file are left out.
func ListBundles(dir, host string) ([]BundleFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	re := BundlePattern(host)
	var out []BundleFile
	for _, e := range entries {
		m := re.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		t, err := time.Parse(bundleTimeLayout, m[1])
		if err != nil {
			continue
		}
		seq := 1
		if m[2] != "" {
			seq, _ = strconv.Atoi(m[2])
		}
		// Lstat, not Stat: the name must be the regular file itself.
		info, err := os.Lstat(filepath.Join(dir, e.Name()))
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		out = append(out, BundleFile{Name: e.Name(), Size: info.Size(), Time: t, Seq: seq})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		if out[i].Seq != out[j].Seq {
			return out[i].Seq > out[j].Seq
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}

// Apply deletes host's bundles in dir until at most Keep remain and they
// total at most MaxBytes: first the oldest of those already uploaded (or
// never meant to be: no pending sidecar), then, only if that is not
// enough, the oldest pending ones (with their sidecars). The newest bundle
// is never deleted, nor is the bundle named protect (the one just
// written), even if it alone is over MaxBytes. Only files ListBundles
// returns are candidates. Apply returns the names it deleted, and of those
// the ones that were pending (never uploaded): the caller says so in its
// log.
func (r Retention) Apply(dir, host, protect string) (removed, pendingRemoved []string, err error) {
	return r.apply(dir, host, protect, nil)
}

// apply is Apply with unsent, when not nil, naming more bundles to keep
// as pending ones are kept: those whose sidecar could not be written.
func (r Retention) apply(dir, host, protect string, unsent func(path string) bool) (removed, pendingRemoved []string, err error) {
	if r.Keep <= 0 && r.MaxBytes <= 0 {
		return nil, nil, nil
	}
	files, err := ListBundles(dir, host)
	if err != nil {
		return nil, nil, err
	}
	protect = filepath.Base(protect)
	var total int64
	for _, f := range files {
		total += f.Size
	}
	count := len(files)
	over := func() bool { return r.Keep > 0 && count > r.Keep || r.MaxBytes > 0 && total > r.MaxBytes }
	var errs []error
	// Two passes, oldest first: bundles already in the store, then pending
	// ones. files is newest first.
	for _, pendingPass := range []bool{false, true} {
		for i := len(files) - 1; i > 0 && over(); i-- {
			f := files[i]
			path := filepath.Join(dir, f.Name)
			if f.Name == protect || f.Size < 0 || (ship.IsPending(path) || unsent != nil && unsent(path)) != pendingPass {
				continue
			}
			// Look again right before deleting: the name must still be a
			// regular file, not something put in its place since it was
			// listed.
			info, err := os.Lstat(path)
			if err != nil || !info.Mode().IsRegular() {
				continue
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove %s: %w", path, err))
				continue
			}
			if pendingPass {
				if err := ship.ClearPending(path); err != nil {
					errs = append(errs, err)
				}
				pendingRemoved = append(pendingRemoved, f.Name)
			}
			removed = append(removed, f.Name)
			files[i].Size = -1 // gone
			count--
			total -= f.Size
		}
	}
	return removed, pendingRemoved, errors.Join(errs...)
}

// FreeBytes is the space available to an unprivileged user on the
// filesystem holding dir (statfs f_bavail): what a capture may fill without
// eating into the blocks reserved for root.
func FreeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// CheckFree returns an error wrapping ErrLowSpace when dir's filesystem has
// less than MinFree bytes available.
func (r Retention) CheckFree(dir string) error {
	if r.MinFree <= 0 {
		return nil
	}
	free, err := FreeBytes(dir)
	if err != nil {
		return err
	}
	if free < r.MinFree {
		return fmt.Errorf("%s has %s free, below --min-free %s: %w", dir, FormatBytes(free), FormatBytes(r.MinFree), ErrLowSpace)
	}
	return nil
}
