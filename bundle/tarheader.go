package bundle

import (
	"archive/tar"
	"bytes"
	"fmt"
	"time"
)

// zeroBlock pads members to the tar block size and makes the trailer.
var zeroBlock [1024]byte

// appendTarHeader appends the tar header of a regular member of mode 0600 to
// dst, byte for byte what archive/tar writes for it in PAX format, without
// its data: the data may already be compressed. A capture writes one for
// each of its thousand members, and archive/tar's Writer costs 1.5 KiB of
// fresh memory for each; a header whose fields fit the one USTAR block
// (an ASCII name of at most 100 bytes, a size and a time that fit their
// octal fields) is therefore built here, into dst, and only the others,
// which need PAX records, go through archive/tar.
func appendTarHeader(dst []byte, name string, size int64, mtime time.Time) ([]byte, error) {
	mtime = mtime.UTC().Truncate(time.Second)
	if mtime.IsZero() {
		mtime = time.Unix(0, 0) // as archive/tar writes a zero time
	}
	secs := mtime.Unix()
	if len(name) > 100 || !tarASCII(name) || !fitsOctal11(size) || !fitsOctal11(secs) {
		return appendTarHeaderPAX(dst, name, size, mtime)
	}
	start := len(dst)
	dst = append(dst, zeroBlock[:512]...)
	b := dst[start:]
	copy(b[0:100], name)
	copy(b[100:108], "0000600")
	copy(b[108:116], "0000000")
	copy(b[116:124], "0000000")
	putOctal(b[124:135], size)
	putOctal(b[136:147], secs)
	b[156] = tar.TypeReg
	copy(b[257:265], "ustar\x0000")
	copy(b[329:337], "0000000")
	copy(b[337:345], "0000000")
	// The checksum is the sum of the block's bytes with its own field
	// counted as spaces, in six octal digits, a NUL and a space.
	sum := int64(8 * ' ')
	for i, c := range b {
		if i < 148 || i >= 156 {
			sum += int64(c)
		}
	}
	putOctal(b[148:154], sum)
	b[155] = ' '
	return dst, nil
}

// appendTarHeaderPAX appends the header archive/tar writes, PAX records
// and all.
func appendTarHeaderPAX(dst []byte, name string, size int64, mtime time.Time) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	tw := tar.NewWriter(buf)
	// tw is dropped without Close: only the header blocks are wanted.
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600,
		ModTime: mtime, Format: tar.FormatPAX,
	}); err != nil {
		return dst, fmt.Errorf("tar header for %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// tarASCII reports whether archive/tar stores s as it is, without a PAX
// record: no NUL and nothing outside ASCII.
func tarASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// fitsOctal11 reports whether x fits a 12-byte octal field: 11 digits.
func fitsOctal11(x int64) bool { return x >= 0 && x < 1<<33 }

// putOctal writes x into b in octal, with leading zeros; the byte after b
// is left as the NUL the block already holds.
func putOctal(b []byte, x int64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + x&7)
		x >>= 3
	}
}
