package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/snapdiag/snapdiag/bundle"
)

// Cache holds each bundle's Summary under the SHA-256 of its bytes as they
// were read, and, for each listed object whose bytes were read and hashed,
// that hash under a hash of the object's identity (source, key, version,
// size and listed checksum), so a second run reads no bundle it has seen. Every file
// name is a hash: no part of an untrusted key or checksum reaches a path
// unchecked.
type Cache struct {
	Dir string
}

// DefaultCacheDir is $XDG_CACHE_HOME/snapdiag/fleet (~/.cache when unset).
func DefaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return filepath.Join(base, "snapdiag", "fleet"), nil
}

// summaryFormat is bumped when Summary changes meaning, so entries written
// by another build are analyzed again rather than misread. 2: refs record
// computed checksums only; packet evidence and hourly load.
const summaryFormat = 2

// SummaryPath is where the summary of the bundle with checksum sum lives,
// and "" when sum is not a SHA-256 in hex.
func (c Cache) SummaryPath(sum string) string {
	if sum = NormalizeSum(sum); sum == "" {
		return ""
	}
	return filepath.Join(c.Dir, "reports", sum[:2], sum+".json")
}

// refFormat is bumped when what identifies an object changes, so a ref
// recorded under a weaker identity is never found. 2: the source's origin;
// a file's inode and change time; an S3 object's modification time.
const refFormat = "ref/2"

// RefPath is where the computed checksum of object o is recorded: named
// by the SHA-256 of its identity, whatever bytes the key holds. The
// identity is what changes when the object is replaced: its source
// (Origin: the same key in another tree or bucket is another object), its
// key, version (ETag and modification time; a file's modification time,
// inode and change time), size, and the checksum the listing claims (a
// rewritten KEY.sha256 sidecar makes the bytes be read and checked
// again). "" when o has no version: nothing says its bytes are unchanged.
func (c Cache) RefPath(o Object) string {
	if o.Version == "" {
		return ""
	}
	h := sha256.New()
	for _, s := range []string{refFormat, o.Origin, o.Key, o.Version, strconv.FormatInt(o.Size, 10), o.SHA256} {
		// Length-prefixed, so no two tuples hash the same input.
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	name := hex.EncodeToString(h.Sum(nil))
	return filepath.Join(c.Dir, "refs", name[:2], name)
}

// Summary returns the cached summary of sum; ok is false when there is
// none, or it cannot be read, or it is not one this build wrote (a corrupt
// entry is analyzed again).
func (c Cache) Summary(sum string) (s Summary, ok bool) {
	p := c.SummaryPath(sum)
	if p == "" {
		return Summary{}, false
	}
	data, err := readSmall(p, 4<<20)
	if err != nil {
		return Summary{}, false
	}
	if json.Unmarshal(data, &s) != nil || s.Format != summaryFormat || s.SHA256 != NormalizeSum(sum) {
		return Summary{}, false
	}
	return s, true
}

// PutSummary stores s under its checksum.
func (c Cache) PutSummary(s Summary) error {
	p := c.SummaryPath(s.SHA256)
	if p == "" {
		return fmt.Errorf("cache summary: checksum %q is not a sha-256", s.SHA256)
	}
	s.Format = summaryFormat
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("cache summary: %w", err)
	}
	return writeAtomic(p, data)
}

// Ref returns the checksum computed from o's bytes when they were last
// read, "" when none is recorded.
func (c Cache) Ref(o Object) string {
	p := c.RefPath(o)
	if p == "" {
		return ""
	}
	data, err := readSmall(p, 128)
	if err != nil {
		return ""
	}
	return NormalizeSum(string(data))
}

// PutRef records sum, computed from o's bytes as they were read, as o's
// checksum; never a checksum the store claims. An object without a
// version has no ref: nothing is recorded.
func (c Cache) PutRef(o Object, sum string) error {
	if sum = NormalizeSum(sum); sum == "" {
		return errors.New("cache ref: not a sha-256")
	}
	p := c.RefPath(o)
	if p == "" {
		return nil
	}
	return writeAtomic(p, []byte(sum))
}

// readSmall reads the cache entry at p, at most limit bytes, through
// bundle.ReadFileLimit: a fifo or device planted in the cache is refused
// before it is opened, rather than hanging the run.
func readSmall(p string, limit int64) ([]byte, error) {
	return bundle.ReadFileLimit(os.DirFS(filepath.Dir(p)), filepath.Base(p), limit)
}

// writeAtomic writes data to a temporary file beside p and renames it into
// place: a reader sees the old entry or the whole new one. It does not
// fsync, unlike the bundle and upload writers: an entry lost or left empty
// by a crash is only analyzed again (Summary refuses it), and a thousand
// syncs would cost a cold run more than the analyses.
func writeAtomic(p string, data []byte) (err error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("cache: write %s: %w", f.Name(), err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("cache: close %s: %w", f.Name(), err)
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}
