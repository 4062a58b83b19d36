package ship

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
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

// ClearPending removes the sidecar of the bundle at bundlePath; a missing
// one is not an error.
func ClearPending(bundlePath string) error {
	if err := os.Remove(PendingPath(bundlePath)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pending sidecar: %w", err)
	}
	return nil
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
// into place.
func writeAtomic(path string, data []byte) error {
	return copyAtomic(path, bytes.NewReader(data))
}

// copyAtomic copies r to path through a synced temporary file in the same
// directory (a dot name no reader lists), renamed into place: a reader sees
// the old file or the whole new one, and a process killed half way leaves
// at most the temporary file.
func copyAtomic(path string, r io.Reader) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
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
