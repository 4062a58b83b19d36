package bundle

import (
	"math/bits"
	"slices"
	"unicode/utf8"
)

// The JSON primitives the hand-written codecs of this package share. They
// write exactly what encoding/json writes for the same values, so a member
// reads the same whichever of the two wrote it.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a quoted JSON string, escaped as
// encoding/json.Marshal escapes it: HTML-sensitive characters as \u00XX,
// invalid UTF-8 as \ufffd, U+2028 and U+2029 as \u2028 and \u2029.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONStringBody(b, s)
	return append(b, '"')
}

// appendJSONStringBody is appendJSONString without the quotes.
func appendJSONStringBody(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if htmlSafe(c) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// htmlSafe reports whether encoding/json writes the ASCII byte c as it is.
func htmlSafe(c byte) bool {
	return c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// appendUintField appends key and v, or nothing when omitEmpty and v is 0
// (encoding/json's omitempty). It is small enough to be inlined, so that
// with a constant key (every caller's) the key is copied by a few moves
// rather than a call to memmove: the socket table writes some 25 of these
// a row, and those calls were a quarter of its encoding time.
func appendUintField(b []byte, key string, v uint64, omitEmpty bool) []byte {
	if omitEmpty && v == 0 {
		return b
	}
	return appendUint(append(b, key...), v)
}

// appendUint is strconv.AppendUint(b, v, 10), writing the digits in place
// rather than into a buffer then copied.
func appendUint(b []byte, v uint64) []byte {
	if v < 10 {
		return append(b, byte('0'+v))
	}
	n := decimalDigits(v)
	b = slices.Grow(b, n)
	i := len(b) + n
	b = b[:i]
	for v >= 100 {
		q := v / 100
		r := (v - q*100) * 2
		i -= 2
		b[i], b[i+1] = digitPairs[r], digitPairs[r+1]
		v = q
	}
	if v >= 10 {
		b[i-2], b[i-1] = digitPairs[v*2], digitPairs[v*2+1]
	} else {
		b[i-1] = byte('0' + v)
	}
	return b
}

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// decimalDigits is the number of decimal digits of v, at least 1.
func decimalDigits(v uint64) int {
	// bits.Len64(v) * log10(2) (1233/4096), rounded down, is the digits
	// or the digits less one; a comparison with a power of ten settles it.
	n := (bits.Len64(v) * 1233) >> 12
	if n < len(powersOf10) && v >= powersOf10[n] {
		n++
	}
	return max(n, 1)
}

// powersOf10[i] is 10 to the i.
var powersOf10 = [...]uint64{
	1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
}

// jsonSpace reports whether c is white space between JSON tokens.
func jsonSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && jsonSpace(b[i]) {
		i++
	}
	return i
}

// scanPlainString reads the JSON string at b[i] when it holds only printable
// ASCII without escapes: what the collectors write for every field but an
// odd interface name. It returns the bytes between the quotes and the index
// after the closing quote; false for anything else, which the caller leaves
// to encoding/json.
func scanPlainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, j, false
		}
	}
	return nil, len(b), false
}

// scanUint reads the JSON number at b[i] when it is a non-negative integer
// of at most 64 bits written as encoding/json writes one (no sign, fraction,
// exponent or leading zero).
func scanUint(b []byte, i int) (uint64, int, bool) {
	j := i
	var v uint64
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		d := uint64(b[j] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, j, false
		}
		v = v*10 + d
		j++
	}
	switch {
	case j == i, b[i] == '0' && j > i+1:
		return 0, j, false
	case j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E'):
		return 0, j, false
	}
	return v, j, true
}
