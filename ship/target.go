// Package ship sends bundles off the host: to an S3-compatible object store
// (s3://BUCKET/PREFIX) or a directory on a shared mount (file:///DIR), under
// the key PREFIX/HOSTNAME/BUNDLE_NAME, with the bundle's SHA-256 travelling
// with the object and checked after the upload.
//
// A bundle that could not be sent stays where it was written, marked pending
// by a sidecar file beside it (NAME.pending, see Pending); whoever sends it
// later (watch's retry loop, snapdiag push --pending) removes the sidecar once
// the object is in the store and verified.
package ship

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Scheme is a target's kind of store.
type Scheme string

// The schemes a target URL may have.
const (
	SchemeS3   Scheme = "s3"
	SchemeFile Scheme = "file"
)

// Target is where bundles go: a bucket and key prefix, or a directory.
type Target struct {
	Scheme Scheme
	// Bucket and Prefix of an s3 target; Prefix has no leading or trailing
	// slash and may be empty.
	Bucket string
	Prefix string
	// Dir is a file target's directory, absolute.
	Dir string
}

// ErrTarget is wrapped by errors about a target URL that cannot be used.
var ErrTarget = errors.New("bad upload target")

// ParseTarget parses s3://BUCKET[/PREFIX] or file:///DIR.
func ParseTarget(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("%w %q: %v", ErrTarget, raw, err)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// Credentials never go in the URL: it is logged and stored in
		// pending sidecars.
		return Target{}, fmt.Errorf("%w %q: no user, query or fragment allowed (credentials come from AWS_* variables or the shared credentials file)", ErrTarget, raw)
	}
	switch Scheme(u.Scheme) {
	case SchemeS3:
		if !validBucket(u.Host) {
			return Target{}, fmt.Errorf("%w %q: bucket %q is not a valid bucket name", ErrTarget, raw, u.Host)
		}
		prefix, err := cleanPrefix(u.Path)
		if err != nil {
			return Target{}, fmt.Errorf("%w %q: %w", ErrTarget, raw, err)
		}
		return Target{Scheme: SchemeS3, Bucket: u.Host, Prefix: prefix}, nil
	case SchemeFile:
		if u.Host != "" && u.Host != "localhost" {
			return Target{}, fmt.Errorf("%w %q: a file target is file:///DIR (no host)", ErrTarget, raw)
		}
		if !path.IsAbs(u.Path) || path.Clean(u.Path) != strings.TrimSuffix(u.Path, "/") && u.Path != "/" {
			return Target{}, fmt.Errorf("%w %q: the directory must be absolute and clean", ErrTarget, raw)
		}
		return Target{Scheme: SchemeFile, Dir: path.Clean(u.Path)}, nil
	}
	return Target{}, fmt.Errorf("%w %q: want s3://BUCKET/PREFIX or file:///DIR", ErrTarget, raw)
}

// String is the target as a URL, the form ParseTarget reads.
func (t Target) String() string {
	if t.Scheme == SchemeFile {
		return "file://" + t.Dir
	}
	if t.Prefix == "" {
		return "s3://" + t.Bucket
	}
	return "s3://" + t.Bucket + "/" + t.Prefix
}

// validBucket accepts S3's bucket names: 3 to 63 lower-case letters, digits,
// dots and hyphens, starting and ending with a letter or digit.
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '-') && i > 0 && i < len(b)-1:
		default:
			return false
		}
	}
	return !strings.Contains(b, "..")
}

// cleanPrefix checks a key prefix given by the user: segments as Key
// accepts them, without leading or trailing slashes.
func cleanPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if !validSegment(seg) {
			return "", fmt.Errorf("prefix segment %q: want letters, digits, '.', '-' or '_', and not a dot or two alone", seg)
		}
	}
	return p, nil
}
