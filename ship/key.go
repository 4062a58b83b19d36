package ship

import (
	"errors"
	"fmt"
	"strings"
)

// maxSegment bounds one key segment (a host name or a bundle name): file
// systems refuse longer names, and S3 keys are at most 1,024 bytes.
const maxSegment = 200

// ErrKey is wrapped by errors about a key that would not be one plain
// PREFIX/HOSTNAME/NAME path.
var ErrKey = errors.New("unsafe object key")

// validSegment reports whether s can be one segment of a key: letters,
// digits, '.', '-' and '_' only, and not "." or "..", so that no segment can
// climb out of a directory or make a key absolute.
func validSegment(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > maxSegment {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// HostSegment turns a host name, which the bundle's manifest carries and so
// may be anything, into a key segment: every other byte becomes '_', an
// empty name becomes "unknown", and "." or ".." become "_" and "__".
func HostSegment(host string) string {
	var b strings.Builder
	for i := 0; i < len(host) && b.Len() < maxSegment; i++ {
		c := host[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	switch s := b.String(); s {
	case "":
		return "unknown"
	case ".", "..":
		return strings.Repeat("_", len(s))
	default:
		return s
	}
}

// Key is the object key of bundle name from host under prefix:
// PREFIX/HOSTNAME/NAME. The host is made safe (HostSegment); a name that is
// not one safe segment is refused, since it names a file the caller chose.
func Key(prefix, host, name string) (string, error) {
	if !validSegment(name) {
		return "", fmt.Errorf("%w: bundle name %q", ErrKey, name)
	}
	p, err := cleanPrefix(prefix)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrKey, err)
	}
	k := HostSegment(host) + "/" + name
	if p != "" {
		k = p + "/" + k
	}
	return k, nil
}

// CheckKey reports whether key is one a Key call could have made: relative,
// with only safe segments. A key read back from a pending sidecar is checked
// again before use, since the sidecar is a file anyone with access to the
// directory could have edited.
func CheckKey(key string) error {
	segs := strings.Split(key, "/")
	if len(segs) < 2 || len(key) > 1024 {
		return fmt.Errorf("%w: %q", ErrKey, key)
	}
	for _, s := range segs {
		if !validSegment(s) {
			return fmt.Errorf("%w: %q", ErrKey, key)
		}
	}
	return nil
}
