// Package fleet analyzes a whole fleet of bundles at once: every bundle
// under a directory tree or an s3://BUCKET/PREFIX, each analyzed once and
// its summary cached by its SHA-256, then brought together as incidents per
// host and day, findings that recur across hosts, the half-open clients of
// SYN-queue incidents and the load each bundle saw.
//
// Object keys and bundle contents are untrusted: a key only ever names what
// to read, never where to write; cache files are named by checksums alone.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/ship"
)

// BundleSuffix is the name ending of the bundles a source lists.
const BundleSuffix = ".tar.zst"

// Object is one bundle a source lists.
type Object struct {
	// Key is its path under the source: PREFIX/HOSTNAME/NAME as ship
	// writes it, slash-separated.
	Key  string
	Size int64
	// Origin names the source the key is under: a tree's absolute path,
	// a store's endpoint, bucket and prefix. The same key under two
	// sources sharing a cache is two objects.
	Origin string
	// Version changes whenever the object is replaced (an S3 ETag and
	// modification time; a file's modification time, inode and change
	// time, the last of which no user can set back): origin, key, version
	// and size together identify one content, so its checksum is looked up
	// once. "" when nothing identifies the content (an S3 listing without
	// an ETag): its bytes are read every run.
	Version string
	// SHA256 is the checksum the listing already knows (a file target's
	// KEY.sha256 sidecar), "" otherwise.
	SHA256 string
}

// Source is where the bundles are.
type Source interface {
	// List returns every bundle under the source.
	List(ctx context.Context) ([]Object, error)
	// Checksum is the SHA-256 the store recorded with the object ("" when
	// none).
	Checksum(ctx context.Context, o Object) (string, error)
	// Open streams the object's bytes.
	Open(ctx context.Context, o Object) (io.ReadCloser, error)
	// String names the source as the user gave it.
	String() string
}

// Open returns the source named by raw: s3://BUCKET/PREFIX, file:///DIR or
// a plain directory path.
func Open(raw string, o ship.S3Options) (Source, error) {
	if strings.HasPrefix(raw, "s3://") || strings.HasPrefix(raw, "file://") {
		t, err := ship.ParseTarget(raw)
		if err != nil {
			return nil, err
		}
		if t.Scheme == ship.SchemeFile {
			return NewDirSource(t.Dir), nil
		}
		s, err := ship.NewS3Store(t, o)
		if err != nil {
			return nil, err
		}
		return &s3Source{store: s, target: t}, nil
	}
	abs, err := filepath.Abs(raw)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", raw, err)
	}
	return NewDirSource(abs), nil
}

// dirSource is a directory tree of bundles (a file:// target or a copy of
// one). Symbolic links are not followed: a link could point anywhere.
type dirSource struct{ root string }

// NewDirSource returns the source of the bundles under dir, made absolute
// and clean: it is the origin of every object listed.
func NewDirSource(dir string) Source {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return dirSource{root: filepath.Clean(dir)}
}

func (d dirSource) String() string { return d.root }

func (d dirSource) List(context.Context) ([]Object, error) {
	info, err := os.Stat(d.root)
	if err != nil {
		return nil, fmt.Errorf("read source %s: %w", d.root, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("read source %s: not a directory", d.root)
	}
	var out []Object
	err = filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), BundleSuffix) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		out = append(out, Object{Key: filepath.ToSlash(rel), Origin: "file:" + d.root, Size: info.Size(),
			Version: fileVersion(info), SHA256: readSidecar(p + ship.SHA256Suffix)})
		return nil
	})
	return out, err
}

// readSidecar reads the checksum of a KEY.sha256 sidecar ("HEX  NAME"), ""
// when there is none or it does not start with one.
func readSidecar(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 64)
	if _, err := io.ReadFull(f, buf); err != nil {
		return ""
	}
	return NormalizeSum(string(buf))
}

func (d dirSource) Checksum(context.Context, Object) (string, error) { return "", nil }

func (d dirSource) Open(_ context.Context, o Object) (io.ReadCloser, error) {
	p := filepath.Join(d.root, filepath.FromSlash(o.Key))
	f, err := os.OpenFile(p, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", p, errors.Join(errNotRegular, err))
	}
	return f, nil
}

var errNotRegular = errors.New("not a regular file")

// s3Source is an s3://BUCKET/PREFIX.
type s3Source struct {
	store  *ship.S3Store
	target ship.Target
}

func (s *s3Source) String() string { return s.target.String() }

func (s *s3Source) List(ctx context.Context) ([]Object, error) {
	var out []Object
	err := s.store.List(ctx, s.target.Prefix, func(l ship.Listed) error {
		if strings.HasSuffix(l.Key, BundleSuffix) {
			k := strings.TrimPrefix(l.Key, s.target.Prefix+"/")
			if s.target.Prefix == "" {
				k = l.Key
			}
			o := Object{Key: k, Origin: s.origin(), Size: l.Size}
			// Without an ETag, a replacement written in the same second
			// (the listing's resolution) with the same size would look
			// unchanged: such an object is read every run.
			if l.ETag != "" {
				o.Version = "etag:" + l.ETag + " modified:" + l.LastModified.UTC().Format(time.RFC3339Nano)
			}
			out = append(out, o)
		}
		return nil
	})
	return out, err
}

// origin is the store's endpoint, bucket and prefix.
func (s *s3Source) origin() string {
	return "s3:" + s.store.Endpoint() + " " + s.store.Bucket() + "/" + s.target.Prefix
}

func (s *s3Source) fullKey(o Object) string {
	if s.target.Prefix == "" {
		return o.Key
	}
	return s.target.Prefix + "/" + o.Key
}

func (s *s3Source) Checksum(ctx context.Context, o Object) (string, error) {
	obj, ok, err := s.store.Stat(ctx, s.fullKey(o))
	if err != nil || !ok {
		return "", err
	}
	return NormalizeSum(obj.SHA256), nil
}

func (s *s3Source) Open(ctx context.Context, o Object) (io.ReadCloser, error) {
	return s.store.Get(ctx, s.fullKey(o))
}

// NormalizeSum returns s in lower case when it is a SHA-256 in hex, else
// "": a checksum from a store is untrusted and names a cache file.
func NormalizeSum(s string) string {
	if len(s) != 64 {
		return ""
	}
	b := []byte(strings.ToLower(s))
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	return string(b)
}

// HostOf is the host a key names, PREFIX/HOSTNAME/NAME's HOSTNAME, made
// safe to print (ship.HostSegment); "" when the key has no parent segment.
func HostOf(key string) string {
	i := strings.LastIndexByte(key, '/')
	if i <= 0 {
		return ""
	}
	parent := key[:i]
	if j := strings.LastIndexByte(parent, '/'); j >= 0 {
		parent = parent[j+1:]
	}
	return ship.HostSegment(parent)
}
