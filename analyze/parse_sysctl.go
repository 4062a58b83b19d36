package analyze

import (
	"io"
	"strconv"
	"strings"
)

// Sysctls maps a dotted sysctl name (net.core.somaxconn) to its raw value,
// trimmed; multi-value sysctls keep their fields separated by single spaces
// ("4096 131072 6291456").
type Sysctls map[string]string

// parseSysctlValue reads one raw sysctl file.
func parseSysctlValue(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return "", err
	}
	return strings.Join(strings.Fields(string(b)), " "), nil
}

// Get returns the raw value of name and whether the bundle had it.
func (s Sysctls) Get(name string) (string, bool) {
	v, ok := s[name]
	return v, ok
}

// Int returns the integer value of a single-value sysctl.
func (s Sysctls) Int(name string) (int64, bool) {
	v, ok := s[name]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// Ints returns the fields of a multi-value sysctl as integers.
func (s Sysctls) Ints(name string) ([]int64, bool) {
	v, ok := s[name]
	if !ok {
		return nil, false
	}
	f := strings.Fields(v)
	out := make([]int64, 0, len(f))
	for _, x := range f {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return nil, false
		}
		out = append(out, n)
	}
	return out, len(out) > 0
}
