package watch

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseBytes parses a size such as 0, 4096, 512K, 100M, 1.5G, 2GiB or 1T.
// Suffixes are powers of 1024, with an optional "B" or "iB".
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "i")
	mult := int64(1)
	if t != "" {
		switch strings.ToUpper(t[len(t)-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		case "T":
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	t = strings.TrimSpace(t)
	// strconv.ParseFloat also takes "NaN", "Inf", exponents, hex and
	// underscores; NaN fails every comparison and converts to a negative
	// int64, so only plain decimals reach it.
	if !isDecimal(t) {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with K, M, G or T", s)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with K, M, G or T", s)
	}
	return int64(v * float64(mult)), nil
}

// isDecimal reports whether s is digits with at most one decimal point and at
// least one digit: no sign, exponent, NaN or Inf.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// FormatBytes prints n in the largest unit that keeps it at least 1.
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatInt(n, 10) + "B"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}

// ByteSize is a byte count as a command-line flag value (pflag.Value).
type ByteSize int64

// String implements pflag.Value.
func (b *ByteSize) String() string { return FormatBytes(int64(*b)) }

// Set implements pflag.Value.
func (b *ByteSize) Set(s string) error {
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// Type implements pflag.Value.
func (b *ByteSize) Type() string { return "size" }
