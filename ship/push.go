package ship

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// Outcome is what one push did.
type Outcome string

// The outcomes of a push.
const (
	// Uploaded: the object is now in the store, verified.
	Uploaded Outcome = "uploaded"
	// Present: an object with the same SHA-256 and size was already there.
	Present Outcome = "present"
)

// Result is one bundle's push.
type Result struct {
	Bundle  string
	Key     string
	SHA256  string
	Size    int64
	Outcome Outcome
}

// Pusher sends bundles to one target.
type Pusher struct {
	Target Target
	Store  Store
	// Timeout bounds one bundle's push (0: none beyond ctx).
	Timeout time.Duration
	// Now stamps pending sidecars; nil is time.Now.
	Now func() time.Time
}

// Open returns a Pusher for target with the store its scheme needs.
func Open(target Target, o S3Options) (*Pusher, error) {
	p := &Pusher{Target: target}
	if target.Scheme == SchemeFile {
		p.Store = NewFileStore(target.Dir)
		return p, nil
	}
	s, err := NewS3Store(target, o)
	if err != nil {
		return nil, err
	}
	p.Store = s
	return p, nil
}

func (p *Pusher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// KeyFor is the key of the bundle at path written on host.
func (p *Pusher) KeyFor(host, path string) (string, error) {
	return Key(p.Target.Prefix, host, filepath.Base(path))
}

// BundleHost reads the host name a bundle's manifest records, for pushing a
// bundle written elsewhere.
func BundleHost(path string) (string, error) {
	b, err := bundle.Open(path, bundle.Limits{})
	if err != nil {
		return "", err
	}
	defer b.Close()
	return b.Manifest().Host.Hostname, nil
}

// Push sends the bundle at path under key. On success its pending sidecar,
// if any, is removed; on failure the sidecar is written (or its attempt
// count and last error updated), so the bundle stays marked for the next
// run. An object already in the store with the same SHA-256 and size is
// not sent again.
func (p *Pusher) Push(ctx context.Context, path, key string) (Result, error) {
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	res, err := p.push(ctx, path, key)
	if err != nil {
		if nerr := notePending(path, p.Target, key, p.now(), err); nerr != nil {
			err = errors.Join(err, nerr)
		}
		return res, err
	}
	return res, ClearPending(path)
}

func (p *Pusher) push(ctx context.Context, path, key string) (Result, error) {
	res := Result{Bundle: path, Key: key}
	if err := CheckKey(key); err != nil {
		return res, err
	}
	f, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return res, fmt.Errorf("stat %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return res, fmt.Errorf("push %s: not a regular file", path)
	}
	res.Size = info.Size()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, res.Size)); err != nil {
		return res, fmt.Errorf("read %s: %w", path, err)
	}
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	if obj, ok, err := p.Store.Stat(ctx, key); err != nil {
		return res, err
	} else if ok && obj.SHA256 == res.SHA256 && obj.Size == res.Size {
		res.Outcome = Present
		return res, nil
	}
	if err := p.Store.Put(ctx, key, f, res.Size, res.SHA256); err != nil {
		return res, err
	}
	// Read back what the store holds, not what the client believes it
	// sent: the store's own record of the checksum and size.
	obj, ok, err := p.Store.Stat(ctx, key)
	switch {
	case err != nil:
		return res, fmt.Errorf("verify: %w", err)
	case !ok:
		return res, fmt.Errorf("%w: %s is missing after the upload", ErrVerify, key)
	case obj.SHA256 != res.SHA256 || obj.Size != res.Size:
		return res, fmt.Errorf("%w: %s holds %d bytes, sha256 %q; the bundle has %d bytes, sha256 %s", ErrVerify, key, obj.Size, obj.SHA256, res.Size, res.SHA256)
	}
	res.Outcome = Uploaded
	return res, nil
}

// PushPending sends every bundle in dir pending for this Pusher's target,
// each to the key its sidecar names, calling each (when not nil) with every
// outcome. A bundle pending for another target is left alone. It returns
// how many could not be sent.
func (p *Pusher) PushPending(ctx context.Context, dir string, each func(path string, res Result, err error)) (failed int, err error) {
	paths, err := ListPending(dir)
	if err != nil {
		return 0, err
	}
	for _, path := range paths {
		if ctx.Err() != nil {
			return failed + 1, ctx.Err()
		}
		pd, err := ReadPending(path)
		if err == nil && pd.Target != p.Target.String() {
			continue
		}
		var res Result
		if err == nil {
			res, err = p.Push(ctx, path, pd.Key)
		}
		if err != nil {
			failed++
		}
		if each != nil {
			each(path, res, err)
		}
	}
	return failed, nil
}
