package ship

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// IntentFormat is the format of an upload intent.
const IntentFormat = "snapdiag.upload-intent/v1"

// An intent's file name in the output directory: a dot name (no bundle
// reader lists it), unique per capture.
const (
	intentPrefix = ".snapdiag-upload-"
	intentSuffix = ".intent"
)

// maxIntentBytes bounds an intent read back: snapdiag writes about 200.
const maxIntentBytes = 16 << 10

// Intent is the write-ahead half of marking a bundle pending. A bundle's
// final name is chosen when it is committed, so its pending sidecar can
// only be written after the commit; a process killed between the two
// would leave a bundle that nothing marks, and that is never sent. So
// before a capture that will upload starts, an intent naming the target,
// the host and the time is made durable in the output directory, and it is
// removed only once the bundle is marked. Whoever finds an intent left
// behind (RecoverIntents in package watch, under the directory's lock)
// marks every bundle of that host written since it.
type Intent struct {
	Format string `json:"format"`
	// Target is the store's URL, as in a pending sidecar.
	Target string `json:"target"`
	// Host is the host name the bundles' names and keys carry.
	Host string `json:"host"`
	// Since is when the capture was about to start: its bundle's name
	// carries this second or a later one.
	Since time.Time `json:"since"`
}

// BeginIntent writes an intent for a capture into dir, for bundles of host
// going to t, synced with its directory, and returns its path for
// EndIntent.
func BeginIntent(dir string, t Target, host string, now time.Time) (string, error) {
	data, err := json.Marshal(Intent{Format: IntentFormat, Target: t.String(), Host: host, Since: now.UTC()})
	if err != nil {
		return "", fmt.Errorf("encode upload intent: %w", err)
	}
	name := intentPrefix + strconv.FormatInt(now.UnixNano(), 10) + "-" + strconv.Itoa(os.Getpid()) + intentSuffix
	p := filepath.Join(dir, name)
	if err := writeAtomic(p, append(data, '\n')); err != nil {
		return "", err
	}
	return p, nil
}

// EndIntent removes the intent at path once its bundle is marked (or none
// was written), syncing the directory; a missing intent is not an error.
func EndIntent(path string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove upload intent: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// ListIntents returns the paths of the intents in dir, oldest first.
func ListIntents(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), intentPrefix) && strings.HasSuffix(e.Name(), intentSuffix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// ReadIntent reads and checks the intent at path.
func ReadIntent(path string) (Intent, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return Intent{}, fmt.Errorf("read upload intent: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIntentBytes+1))
	if err != nil {
		return Intent{}, fmt.Errorf("read %s: %w", path, err)
	}
	return ParseIntent(data)
}

// ParseIntent decodes an intent and checks it: its format, a target
// ParseTarget takes, a host and a time. An intent is a file in a directory
// others may write, so it is untrusted like a pending sidecar.
func ParseIntent(data []byte) (Intent, error) {
	if len(data) > maxIntentBytes {
		return Intent{}, fmt.Errorf("upload intent: larger than %d bytes", maxIntentBytes)
	}
	var in Intent
	if err := json.Unmarshal(data, &in); err != nil {
		return Intent{}, fmt.Errorf("upload intent: %w", err)
	}
	switch {
	case in.Format != IntentFormat:
		return Intent{}, fmt.Errorf("upload intent: format %q, want %q", in.Format, IntentFormat)
	case in.Host == "" || len(in.Host) > 255:
		return Intent{}, errors.New("upload intent: no host name, or one longer than 255 bytes")
	case in.Since.IsZero():
		return Intent{}, errors.New("upload intent: no time")
	}
	if _, err := ParseTarget(in.Target); err != nil {
		return Intent{}, fmt.Errorf("upload intent: %w", err)
	}
	return in, nil
}
