package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
)

var updateHostile = flag.Bool("update-hostile", false, "rewrite fixtures/hostile from the hostile test cases")

const hostileDir = "../fixtures/hostile"

// sentinels names the errors a hostile bundle may be refused with, for
// fixtures/hostile/expected-errors.json.
var sentinels = map[string]error{
	"ErrNotBundle":  ErrNotBundle,
	"ErrUnsafeName": ErrUnsafeName,
	"ErrNotRegular": ErrNotRegular,
	"ErrLimit":      ErrLimit,
	"ErrCorrupt":    ErrCorrupt,
	"ErrTruncated":  ErrTruncated,
	"ErrFormat":     ErrFormat,
	"ErrNotPcap":    ErrNotPcap,
}

func sentinelName(err error) string {
	for name, s := range sentinels {
		if s == err {
			return name
		}
	}
	return fmt.Sprint(err)
}

// entry is one tar entry of a crafted archive.
type entry struct {
	hdr  tar.Header
	data []byte
}

func reg(name string, data []byte) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o600, ModTime: testTime}, data: data}
}

func special(typ byte, name, link string) entry {
	return entry{hdr: tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: 0o600, ModTime: testTime}}
}

func manifestJSON(format string) []byte {
	m := testManifest()
	m.Format = format
	data, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return data
}

// goodManifest is the first entry of most crafted archives.
func goodManifest() entry { return reg(PathManifest, manifestJSON(Format)) }

// tarOf is a tar stream of entries, with the end-of-archive marker when end.
func tarOf(end bool, entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			panic(fmt.Sprintf("tar header %q: %v", hdr.Name, err))
		}
		if _, err := tw.Write(e.data); err != nil {
			panic(err)
		}
	}
	var err error
	if end {
		err = tw.Close()
	} else {
		err = tw.Flush()
	}
	if err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// tarHeader is the header blocks of hdr alone, without its data.
func tarHeader(hdr tar.Header) []byte {
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).WriteHeader(&hdr); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// zst compresses data into one zstd frame, as the Writer does.
func zst(data ...[]byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(4<<20), zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		panic(err)
	}
	return enc.EncodeAll(bytes.Join(data, nil), nil)
}

// zeroFrame is a zstd frame that decompresses to n zero bytes, made of RLE
// blocks of 128 KiB: 4 bytes each, so 2 GiB take 64 KiB and are never held.
func zeroFrame(n int64) []byte {
	if n <= 0 {
		panic("zeroFrame: n must be positive")
	}
	// Magic; no content size, no checksum; window 128 KiB (exponent 7).
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3}
	for n > 0 {
		k := min(n, 128<<10)
		n -= k
		h := uint32(k)<<3 | 1<<1 // Block_Type RLE
		if n == 0 {
			h |= 1 // Last_Block
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return b
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// endMarker is the tar end-of-archive marker: two zero blocks.
var endMarker = make([]byte, 1024)

// validBundle is a small bundle written by the Writer: the base of the
// truncated and corrupt cases, and of the fuzz corpus.
func validBundle(t testing.TB) []byte {
	t.Helper()
	p := writeBundle(t, t.TempDir(), testMembers(20<<10))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// frameHeaderLen is the length of the zstd frame header at the start of b.
func frameHeaderLen(b []byte) int {
	fhd := b[4]
	n := 5
	if fhd&(1<<5) == 0 {
		n++ // Window_Descriptor
	}
	n += []int{0, 1, 2, 4}[fhd&3]
	fcs := []int{0, 2, 4, 8}[fhd>>6]
	if fhd>>6 == 0 && fhd&(1<<5) != 0 {
		fcs = 1
	}
	return n + fcs
}

// hostileCase is a bundle Open must refuse (or, for the controls, accept),
// or, when member is set, a bundle Open accepts but whose member the
// package's codec for it (memberCodecs) must refuse.
type hostileCase struct {
	name   string
	ext    string // file name extension of the fixture, .tar.zst by default
	desc   string
	data   func(t testing.TB) []byte
	lim    Limits // zero: DefaultLimits
	want   error  // nil: Open must succeed
	msg    string // a part of the error message
	member string // the hostile member, read through its codec
}

// memberCodecs read a member of an opened bundle through the package's
// codec for it, as analyze and redact do.
var memberCodecs = map[string]func(io.Reader) error{
	PathPackets: func(r io.Reader) error {
		pr, err := NewPcapReader(r, PcapLimits{})
		if err != nil {
			return err
		}
		for {
			if _, err := pr.Next(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	},
}

// readMembers reads every member of b that has a codec and returns the
// first error.
func readMembers(b *Bundle) error {
	for _, m := range b.Members() {
		codec, ok := memberCodecs[m.Name]
		if !ok {
			continue
		}
		f, err := b.Open(m.Name)
		if err != nil {
			return err
		}
		err = codec(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", m.Name, err)
		}
	}
	return nil
}

func (c hostileCase) fixture() string {
	ext := c.ext
	if ext == "" {
		ext = ".tar.zst"
	}
	return c.name + ext
}

func hostileCases() []hostileCase {
	withManifest := func(entries ...entry) func(testing.TB) []byte {
		return func(testing.TB) []byte {
			return zst(tarOf(true, append([]entry{goodManifest()}, entries...)...))
		}
	}
	only := func(entries ...entry) func(testing.TB) []byte {
		return func(testing.TB) []byte { return zst(tarOf(true, entries...)) }
	}
	dirEntry := func(name string) entry {
		return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o700, ModTime: testTime}}
	}
	uname := reg(PathUname, []byte("Linux\n"))
	// truncated cuts the valid bundle: at a fixed offset, or at a fraction.
	truncated := func(at func(n int) int) func(testing.TB) []byte {
		return func(t testing.TB) []byte {
			b := validBundle(t)
			return b[:at(len(b))]
		}
	}
	tiny := Limits{MaxMembers: 100, MaxMemberSize: 16 << 20, MaxTotal: 64 << 20, MaxManifest: 4 << 10}

	return []hostileCase{
		// Controls: what a reader must accept.
		{name: "control-valid", data: validBundle},
		{name: "control-directories", data: only(dirEntry("system/"), goodManifest(), dirEntry("samples/000/"), uname)},
		{name: "control-manifest-last", data: only(uname, goodManifest())},
		{name: "control-global-header", data: only(
			entry{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "x"}}},
			goodManifest(), uname)},
		{name: "control-padded", desc: "GNU tar pads to 10 KiB records", data: func(testing.TB) []byte {
			return zst(tarOf(true, goodManifest(), uname), make([]byte, 10240))
		}},

		// Names.
		{name: "traversal", desc: `member "../x"`, data: withManifest(reg("../x", []byte("x"))), want: ErrUnsafeName},
		{name: "traversal-inner", desc: `member "system/../../x"`, data: withManifest(reg("system/../../x", []byte("x"))), want: ErrUnsafeName},
		{name: "traversal-long", desc: "a traversal in a PAX path record (name over 100 bytes)",
			data: withManifest(reg("../"+strings.Repeat("a/", 60)+"x", []byte("x"))), want: ErrUnsafeName},
		{name: "traversal-dir", desc: `directory "../d/"`, data: withManifest(dirEntry("../d/")), want: ErrUnsafeName},
		{name: "absolute", desc: `member "/etc/passwd"`, data: withManifest(reg("/etc/passwd", []byte("root:x:0:0\n"))), want: ErrUnsafeName},
		{name: "unclean-dot", desc: `member "./system/uname"`, data: withManifest(reg("./system/uname", []byte("x"))), want: ErrUnsafeName},
		{name: "unclean-slashes", desc: `member "system//uname"`, data: withManifest(reg("system//uname", []byte("x"))), want: ErrUnsafeName},
		{name: "backslash", desc: `member "..\x"`, data: withManifest(reg(`..\x`, []byte("x"))), want: ErrUnsafeName},
		{name: "not-utf8", desc: "member name not UTF-8", data: withManifest(entry{
			hdr:  tar.Header{Typeflag: tar.TypeReg, Name: "system/\xff", Size: 1, Mode: 0o600, Format: tar.FormatGNU},
			data: []byte("x")}), want: ErrUnsafeName},
		{name: "duplicate", desc: "system/uname twice", data: withManifest(uname, reg(PathUname, []byte("other\n"))), want: ErrUnsafeName, msg: "given twice"},
		{name: "duplicate-manifest", desc: "a second manifest, of another format, smuggled after the first",
			data: withManifest(reg(PathManifest, manifestJSON("snapdiag-bundle/9"))), want: ErrUnsafeName, msg: "given twice"},
		{name: "file-then-dir", desc: `member "system" then "system/uname"`,
			data: withManifest(reg("system", []byte("x")), uname), want: ErrUnsafeName, msg: "both a file and a directory"},
		{name: "dir-then-file", desc: `member "system/uname" then "system"`,
			data: withManifest(uname, reg("system", []byte("x"))), want: ErrUnsafeName, msg: "both a file and a directory"},
		{name: "dir-entry-over-file", desc: `member "system" then directory "system/"`,
			data: withManifest(reg("system", []byte("x")), dirEntry("system/")), want: ErrUnsafeName, msg: "both a file and a directory"},

		// Member types.
		{name: "symlink", desc: `symlink system/uname -> /etc/passwd`, data: withManifest(special(tar.TypeSymlink, PathUname, "/etc/passwd")),
			want: ErrNotRegular, msg: "symbolic link"},
		{name: "symlink-first", desc: "symlink before the manifest", data: only(special(tar.TypeSymlink, PathManifest, "/etc/passwd")),
			want: ErrNotRegular},
		{name: "hardlink", desc: "hard link system/uname -> manifest.json", data: withManifest(special(tar.TypeLink, PathUname, PathManifest)),
			want: ErrNotRegular, msg: "hard link"},
		{name: "char-device", desc: "character device", data: withManifest(special(tar.TypeChar, "dev/null", "")), want: ErrNotRegular},
		{name: "block-device", desc: "block device", data: withManifest(special(tar.TypeBlock, "dev/sda", "")), want: ErrNotRegular},
		{name: "fifo", desc: "fifo", data: withManifest(special(tar.TypeFifo, "system/fifo", "")), want: ErrNotRegular},

		// Sizes and bombs.
		{name: "huge-declared-size", desc: "a header declaring 1 TiB, with no data behind it", data: func(testing.TB) []byte {
			return zst(tarOf(false, goodManifest()), tarHeader(tar.Header{Typeflag: tar.TypeReg, Name: PathSocketsTCP, Size: 1 << 40, Mode: 0o600}))
		}, want: ErrLimit},
		{name: "bomb-2gib", desc: "2 GiB of zeros in 64 KiB", data: func(testing.TB) []byte {
			return concat(
				zst(tarOf(false, goodManifest()), tarHeader(tar.Header{Typeflag: tar.TypeReg, Name: PathPackets, Size: 2 << 30, Mode: 0o600})),
				zeroFrame(2<<30), zst(endMarker))
		}, want: ErrLimit},
		{name: "bomb-2gib-total", desc: "the same bomb, within MaxMemberSize but over MaxTotal", lim: Limits{MaxMemberSize: 4 << 30, MaxTotal: 64 << 20},
			data: func(testing.TB) []byte {
				return concat(
					zst(tarOf(false, goodManifest()), tarHeader(tar.Header{Typeflag: tar.TypeReg, Name: PathPackets, Size: 2 << 30, Mode: 0o600})),
					zeroFrame(2<<30), zst(endMarker))
			}, want: ErrLimit, msg: "declare more than"},
		{name: "bomb-many", desc: "members of 16 MiB of zeros each, over MaxTotal together", lim: tiny, data: func(testing.TB) []byte {
			parts := [][]byte{zst(tarOf(false, goodManifest()))}
			for i := range 8 {
				parts = append(parts,
					zst(tarHeader(tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("z/%d", i), Size: 16 << 20, Mode: 0o600})),
					zeroFrame(16<<20))
			}
			return concat(append(parts, zst(endMarker))...)
		}, want: ErrLimit, msg: "declare more than"},
		{name: "bomb-trailing", desc: "256 MiB of zeros after the end of the archive", data: func(t testing.TB) []byte {
			return concat(zst(tarOf(true, goodManifest(), uname)), zeroFrame(256<<20))
		}, want: ErrLimit, msg: "after the end of the archive"},
		{name: "bomb-trailing-total", desc: "zeros after the end of the archive, over MaxTotal", lim: Limits{MaxTotal: 1 << 20},
			data: func(t testing.TB) []byte {
				return concat(zst(tarOf(true, goodManifest(), uname)), zeroFrame(256<<20))
			}, want: ErrLimit, msg: "decompresses to more than"},
		{name: "bomb-headers", desc: "empty members whose headers alone go over MaxTotal", lim: Limits{MaxTotal: 1 << 20},
			data: func(t testing.TB) []byte {
				entries := []entry{goodManifest()}
				for i := range 4000 {
					entries = append(entries, reg(fmt.Sprintf("e/%d", i), nil))
				}
				return zst(tarOf(true, entries...))
			}, want: ErrLimit, msg: "decompresses to more than"},
		{name: "too-many-members", lim: tiny, data: func(t testing.TB) []byte {
			entries := []entry{goodManifest()}
			for i := range 100 {
				entries = append(entries, reg(fmt.Sprintf("e/%d", i), nil))
			}
			return zst(tarOf(true, entries...))
		}, want: ErrLimit, msg: "more than 100 members"},
		{name: "too-many-dirs", lim: tiny, data: func(t testing.TB) []byte {
			entries := []entry{goodManifest()}
			for i := range 60 {
				entries = append(entries, reg(fmt.Sprintf("d%d/x/y", i), nil))
			}
			return zst(tarOf(true, entries...))
		}, want: ErrLimit, msg: "directories"},
		{name: "manifest-too-large", desc: "a manifest over 8 MiB (of spaces)", data: func(t testing.TB) []byte {
			m := append(manifestJSON(Format), bytes.Repeat([]byte(" "), 8<<20)...)
			return zst(tarOf(true, reg(PathManifest, m)))
		}, want: ErrLimit, msg: "manifest.json"},
		{name: "window-too-large", desc: "a zstd frame asking for a 1 GiB window", data: func(t testing.TB) []byte {
			// Window exponent 20: 1 << 30.
			return concat([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3}, zeroFrame(1024)[6:])
		}, want: ErrLimit, msg: "window"},

		// Damage.
		{name: "truncated-in-frame-header", data: truncated(func(int) int { return 7 }), want: ErrTruncated},
		{name: "truncated-in-manifest", data: truncated(func(int) int { return 200 }), want: ErrTruncated},
		{name: "truncated-half", data: truncated(func(n int) int { return n / 2 }), want: ErrTruncated},
		{name: "truncated-in-last-member", data: truncated(func(n int) int { return n - 2000 }), want: ErrTruncated},
		{name: "truncated-checksum", desc: "the last 2 bytes (of the frame checksum) cut", data: truncated(func(n int) int { return n - 2 }), want: ErrTruncated},
		{name: "no-end-marker", desc: "a complete zstd stream whose tar lacks its end-of-archive marker",
			data: func(testing.TB) []byte { return zst(tarOf(false, goodManifest(), uname)) }, want: ErrTruncated, msg: "end-of-archive"},
		{name: "half-end-marker", desc: "only one of the two zero blocks",
			data: func(testing.TB) []byte { return zst(tarOf(false, goodManifest(), uname), make([]byte, 512)) }, want: ErrTruncated},
		{name: "corrupt-checksum", desc: "the frame checksum flipped", data: func(t testing.TB) []byte {
			b := validBundle(t)
			b[len(b)-1] ^= 0xff
			return b
		}, want: ErrCorrupt},
		{name: "corrupt-block-type", desc: "the first block of the frame has the reserved type", data: func(t testing.TB) []byte {
			b := validBundle(t)
			b[frameHeaderLen(b)] |= 3 << 1
			return b
		}, want: ErrCorrupt},
		{name: "trailing-garbage", desc: "text after the zstd frame", data: func(t testing.TB) []byte {
			return append(validBundle(t), "this is not zstd data\n"...)
		}, want: ErrCorrupt, msg: "after the end of the archive"},
		{name: "tar-header-garbage", desc: "random bytes where the second tar header should be", data: func(t testing.TB) []byte {
			return zst(tarOf(false, goodManifest()), randomBytes(7, 4096))
		}, want: ErrCorrupt},

		// Not a bundle.
		{name: "empty", want: ErrNotBundle, data: func(testing.TB) []byte { return nil }},
		{name: "garbage", ext: ".bin", desc: "4 KiB of random bytes", data: func(testing.TB) []byte { return randomBytes(3, 4096) },
			want: ErrNotBundle, msg: "not a zstd file"},
		{name: "gzip", ext: ".tar.gz", desc: "a bundle compressed with gzip instead of zstd", data: func(testing.TB) []byte {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(tarOf(true, goodManifest(), uname))
			zw.Close()
			return buf.Bytes()
		}, want: ErrNotBundle, msg: "gzip"},
		{name: "plain-tar", ext: ".tar", desc: "an uncompressed tar", data: func(testing.TB) []byte { return tarOf(true, goodManifest(), uname) },
			want: ErrNotBundle, msg: "uncompressed tar"},
		{name: "zstd-not-tar", desc: "zstd-compressed text", data: func(testing.TB) []byte {
			return zst(bytes.Repeat([]byte("hello, this is not a tar archive\n"), 100))
		}, want: ErrNotBundle, msg: "not a tar archive"},
		{name: "zstd-empty", desc: "a zstd frame of nothing", data: func(testing.TB) []byte { return zst() }, want: ErrNotBundle},

		// Manifest.
		{name: "format-9", desc: `manifest of format "snapdiag-bundle/9"`,
			data: only(reg(PathManifest, manifestJSON("snapdiag-bundle/9")), uname), want: ErrFormat, msg: "snapdiag-bundle/9"},
		{name: "manifest-malformed", desc: "manifest.json is not JSON",
			data: only(reg(PathManifest, []byte(`{"format": "snapdiag-bundle/1",`)), uname), want: ErrFormat},
		{name: "no-manifest", data: only(uname), want: ErrFormat, msg: "no manifest.json"},
		{name: "empty-archive", desc: "a tar archive with no member", data: only(), want: ErrFormat},

		// Members: a bundle Open accepts, with a member its codec refuses.
		{name: "pcap-gzip", desc: "packets/sample.pcap compressed with gzip, 1 GiB inflated: refused at its magic number",
			data: gzipPcapBundle, member: PathPackets, want: ErrNotPcap, msg: "gzip"},
		{name: "pcap-huge-record", desc: "packets/sample.pcap with a 4 GiB snap length and a record claiming 4 GiB",
			data: func(testing.TB) []byte { return pcapBundle(hugeRecordPcap()) }, member: PathPackets, want: ErrLimit, msg: "record of"},
	}
}

// openBytes opens data as a bundle file, as Open does.
func openBytes(t testing.TB, name string, data []byte, lim Limits) (*Bundle, error) {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return Open(p, lim)
}

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestOpenHostile(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			data := c.data(t)
			for _, partial := range []bool{false, true} {
				lim := c.lim
				lim.Partial = partial
				var b *Bundle
				var err error
				start := time.Now()
				alloc := allocated(func() { b, err = openBytes(t, c.fixture(), data, lim) })
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("Open took %v", d)
				}
				// Bounded memory whatever the input: the decoder's window,
				// the cache and the index, with room to spare.
				if alloc > 160<<20 {
					t.Errorf("Open allocated %d MiB", alloc>>20)
				}
				if c.member != "" {
					if err != nil {
						t.Fatalf("Open(partial=%v): %v, want a bundle whose %s is refused", partial, err, c.member)
					}
					err = readMembers(b)
					b.Close()
					if !errors.Is(err, c.want) {
						t.Fatalf("read %s: %v, want %v", c.member, err, sentinelName(c.want))
					}
					if !strings.Contains(err.Error(), c.msg) {
						t.Errorf("error %q does not say %q", err, c.msg)
					}
					continue
				}
				if c.want == nil {
					if err != nil {
						t.Fatalf("Open(partial=%v): %v", partial, err)
					}
					if b.Damage() != nil {
						t.Errorf("Damage() = %v", b.Damage())
					}
					var names []string
					for _, m := range b.Members() {
						names = append(names, m.Name)
					}
					if err := fstest.TestFS(b, names...); err != nil {
						t.Error(err)
					}
					b.Close()
					continue
				}
				if err == nil {
					if partial && errors.Is(c.want, ErrCorrupt) {
						// A damaged bundle whose manifest survived.
						if !errors.Is(b.Damage(), c.want) {
							t.Errorf("Partial: Damage() = %v, want %v", b.Damage(), sentinelName(c.want))
						}
						checkOneLine(t, b.Damage(), c.msg)
						b.Close()
						continue
					}
					t.Fatalf("Open(partial=%v) succeeded, want %v", partial, sentinelName(c.want))
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("Open(partial=%v): %v, want %v", partial, err, sentinelName(c.want))
				}
				checkOneLine(t, err, c.msg)
			}
		})
	}
}

// checkOneLine checks that err is one line naming the bundle, with msg in it.
func checkOneLine(t *testing.T, err error, msg string) {
	t.Helper()
	s := err.Error()
	if strings.ContainsAny(s, "\n\r") || !strings.HasPrefix(s, "read ") {
		t.Errorf("error %q is not one line starting with read", s)
	}
	if !strings.Contains(s, msg) {
		t.Errorf("error %q does not say %q", s, msg)
	}
	if s != strings.ToValidUTF8(s, "?") {
		t.Errorf("error %q is not valid UTF-8", s)
	}
}

// TestHostileFixtures checks every file of fixtures/hostile against
// expected-errors.json. go test -run HostileFixtures -update-hostile
// rewrites them from hostileCases.
func TestHostileFixtures(t *testing.T) {
	if *updateHostile {
		writeHostileFixtures(t)
	}
	raw, err := os.ReadFile(filepath.Join(hostileDir, "expected-errors.json"))
	if err != nil {
		t.Fatalf("%v (run go test ./bundle -run HostileFixtures -update-hostile)", err)
	}
	var expected map[string]string
	if err := json.Unmarshal(raw, &expected); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(hostileDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if name == "expected-errors.json" || name == "README.md" {
			continue
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			want, ok := sentinels[expected[name]]
			if !ok {
				t.Fatalf("expected-errors.json names no known error for %s (%q)", name, expected[name])
			}
			b, err := Open(filepath.Join(hostileDir, name), DefaultLimits())
			if err == nil {
				// A hostile member: its codec must refuse it.
				err = readMembers(b)
				b.Close()
				if err == nil {
					t.Fatalf("Open and every member's codec succeeded, want %s", expected[name])
				}
			}
			if !errors.Is(err, want) {
				t.Errorf("Open: %v, want %s", err, expected[name])
			}
		})
	}
	for name := range expected {
		if !seen[name] {
			t.Errorf("expected-errors.json names %s, which is not in %s", name, hostileDir)
		}
	}
}

// writeHostileFixtures writes the small hostile cases that need no special
// limits into fixtures/hostile, with expected-errors.json and a README.
func writeHostileFixtures(t *testing.T) {
	if err := os.RemoveAll(hostileDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(hostileDir, 0o755); err != nil {
		t.Fatal(err)
	}
	expected := map[string]string{}
	var readme strings.Builder
	readme.WriteString(`# Hostile bundles

Each file here is a bundle that bundle.Open must refuse with bundle.DefaultLimits,
or whose member the bundle package's codec for it must refuse (the pcap-* cases),
with the error named in expected-errors.json (bundle.TestHostileFixtures checks it;
analyze.TestHostileMembers checks that analyze reads the rest of such a bundle).
They are written by the hostile test cases of bundle/open_test.go:

    go test ./bundle -run HostileFixtures -update-hostile

Cases that need smaller limits, or weigh more than 100 KB, are only generated in
the test (TestOpenHostile).

| file | expected error | what it is |
| --- | --- | --- |
`)
	for _, c := range hostileCases() {
		if c.want == nil || c.lim != (Limits{}) {
			continue
		}
		data := c.data(t)
		if len(data) > 100_000 {
			continue
		}
		name := c.fixture()
		if err := os.WriteFile(filepath.Join(hostileDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		expected[name] = sentinelName(c.want)
		desc := c.desc
		if desc == "" {
			desc = strings.ReplaceAll(c.name, "-", " ")
		}
		fmt.Fprintf(&readme, "| %s | %s | %s |\n", name, expected[name], strings.ReplaceAll(desc, "|", `\|`))
	}
	raw, err := json.MarshalIndent(expected, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostileDir, "expected-errors.json"), append(raw, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostileDir, "README.md"), []byte(readme.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenFSTest(t *testing.T) {
	p := writeBundle(t, t.TempDir(), testMembers(300<<10))
	for _, lim := range []Limits{{}, {CacheMember: 100}, {CacheTotal: 1}} {
		t.Run(fmt.Sprintf("cache-%d-%d", lim.CacheMember, lim.CacheTotal), func(t *testing.T) {
			b, err := Open(p, lim)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := fstest.TestFS(b, wantOrder...); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestOpenDirectories(t *testing.T) {
	p := writeBundle(t, t.TempDir(), testMembers(10))
	b, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	entries, err := b.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		s := e.Name()
		if e.IsDir() {
			s += "/"
		}
		got = append(got, s)
	}
	want := []string{"extra/", PathManifest, "packets/", "proc/", "samples/", "sockets/", "system/"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadDir(.) (-want +got):\n%s", diff)
	}
	fi, err := b.Stat("samples/000/proc")
	if err != nil || !fi.IsDir() {
		t.Errorf("Stat(samples/000/proc) = %v, %v; want a directory", fi, err)
	}
	for _, name := range []string{"/manifest.json", "samples/", "../x", "samples//000"} {
		if _, err := b.Open(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := b.Open("samples/002"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(samples/002) = %v, want ErrNotExist", err)
	}
	if _, err := b.ReadDir(PathUname); err == nil {
		t.Errorf("ReadDir of a file succeeded")
	}
	if _, err := b.ReadFile("samples"); err == nil {
		t.Errorf("ReadFile of a directory succeeded")
	}
}

// TestOpenLargeMember reads a socket table of 200,000 rows: Open must not
// hold it, and reading it streams the archive again.
func TestOpenLargeMember(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 30 MB socket table")
	}
	var rows bytes.Buffer
	for i := range 200_000 {
		fmt.Fprintf(&rows, `{"family":"inet","state":"SYN-RECV","local":"10.0.0.1:143","remote":"10.%d.%d.%d:%d","recv_q":0,"send_q":0,"uid":0,"inode":0,"cookie":%d}`+"\n",
			i>>16, i>>8&0xff, i&0xff, 1024+i%60000, i*7919)
	}
	members := append(testMembers(64<<10), testMember{"x", "extra/after", []byte("after the table\n")})
	for i := range members {
		if members[i].name == PathSocketsTCP {
			members[i].data = rows.Bytes()
		}
	}
	p := writeBundle(t, t.TempDir(), members)

	var b *Bundle
	var err error
	alloc := allocated(func() { b, err = Open(p, Limits{}) })
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Logf("table %d MB, Open allocated %d MB", rows.Len()>>20, alloc>>20)
	if alloc > uint64(rows.Len()/2) {
		t.Errorf("Open allocated %d bytes for a table of %d: it holds the table", alloc, rows.Len())
	}

	f, err := b.Open(PathSocketsTCP)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n != int64(rows.Len()) || !bytes.Equal(h.Sum(nil), sha256Of(rows.Bytes())) {
		t.Errorf("streamed %d bytes, not the %d written", n, rows.Len())
	}
	fi, err := b.Stat(PathSocketsTCP)
	if err != nil || fi.Size() != int64(rows.Len()) {
		t.Errorf("Stat: %v, %v", fi, err)
	}
	// A member after the table is still found.
	if data, err := b.ReadFile("extra/after"); err != nil || string(data) != "after the table\n" {
		t.Errorf("ReadFile(extra/after) = %q, %v", data, err)
	}
}

func sha256Of(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// TestOpenPartial opens bundles truncated in their last member: strict Open
// refuses them, Partial keeps every complete member and reports the damage.
func TestOpenPartial(t *testing.T) {
	// zstd decodes whole blocks of up to 128 KiB: a cut loses the block it
	// falls in. The packet sample is large enough here that the other
	// members end blocks before the cut.
	members := testMembers(1 << 20)
	full := writeBundle(t, t.TempDir(), members)
	fullData, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{len(fullData) / 2, len(fullData) - 5000, len(fullData) - 600} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			cutData := fullData[:cut]
			_, err := openBytes(t, "cut.tar.zst", cutData, Limits{})
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), PathPackets) {
				t.Fatalf("strict Open: %v, want ErrTruncated naming %s", err, PathPackets)
			}
			b, err := openBytes(t, "cut.tar.zst", cutData, Limits{Partial: true, CacheMember: 1000})
			if err != nil {
				t.Fatalf("Partial Open: %v", err)
			}
			defer b.Close()
			if !errors.Is(b.Damage(), ErrTruncated) || !strings.Contains(b.Damage().Error(), PathPackets) {
				t.Errorf("Damage() = %v, want ErrTruncated naming %s", b.Damage(), PathPackets)
			}
			var names []string
			for _, m := range b.Members() {
				names = append(names, m.Name)
			}
			if diff := cmp.Diff(wantOrder[:len(wantOrder)-1], names); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
			for _, m := range members {
				got, err := b.ReadFile(m.name)
				if m.name == PathPackets {
					if !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("ReadFile(%s) = %v, want ErrNotExist", m.name, err)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, m.data) {
					t.Errorf("ReadFile(%s) = %d bytes, %v; want the %d written", m.name, len(got), err, len(m.data))
				}
			}
			if err := fstest.TestFS(b, wantOrder[:len(wantOrder)-1]...); err != nil {
				t.Error(err)
			}
		})
	}
	// The manifest is what makes a bundle: cut before it ends, nothing is kept.
	if _, err := openBytes(t, "cut.tar.zst", fullData[:100], Limits{Partial: true}); !errors.Is(err, ErrTruncated) {
		t.Errorf("Partial Open cut in the manifest: %v, want ErrTruncated", err)
	}
}

// TestOpenClose: after Close the members held stay readable, the streamed
// ones fail with fs.ErrClosed; an Open bundle whose members are all held
// does not keep its file.
func TestOpenClose(t *testing.T) {
	p := writeBundle(t, t.TempDir(), testMembers(100<<10))
	b, err := Open(p, Limits{CacheMember: 10 << 10})
	if err != nil {
		t.Fatal(err)
	}
	f, err := b.Open(PathPackets)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(f); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("read after Close: %v, want ErrClosed", err)
	}
	if _, err := b.ReadFile(PathPackets); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("ReadFile after Close: %v, want ErrClosed", err)
	}
	if _, err := b.ReadFile(PathUname); err != nil {
		t.Errorf("ReadFile(%s) after Close: %v", PathUname, err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// Everything held: the file can go away at once.
	b, err = Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if data, err := b.ReadFile(PathPackets); err != nil || len(data) != 100<<10 {
		t.Errorf("ReadFile(%s) = %d bytes, %v", PathPackets, len(data), err)
	}
	b.Close()
}

// TestOpenChanged: a streamed member of a bundle changed since Open fails
// with ErrCorrupt, not with someone else's data.
func TestOpenChanged(t *testing.T) {
	data := concat(validBundle(t))
	other := zst(tarOf(true, goodManifest(), reg(PathPackets, bytes.Repeat([]byte("other"), 10000))))
	buf := make([]byte, max(len(data), len(other)))
	copy(buf, data)
	b, err := OpenReader(bytes.NewReader(buf), int64(len(data)), Limits{CacheMember: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Path() != "" {
		t.Errorf("Path() = %q, want empty", b.Path())
	}
	clear(buf)
	copy(buf, other)
	_, err = b.ReadFile(PathPackets)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadFile of a changed bundle: %v, want ErrCorrupt", err)
	}
}

func TestOpenNotAFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, Limits{}); !errors.Is(err, ErrNotBundle) {
		t.Errorf("Open(dir) = %v, want ErrNotBundle", err)
	}
	if _, err := Open(filepath.Join(dir, "none.tar.zst"), Limits{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
}

func TestDefaultLimits(t *testing.T) {
	if got := (Limits{}).withDefaults(); got != DefaultLimits() {
		t.Errorf("zero Limits = %+v, want DefaultLimits %+v", got, DefaultLimits())
	}
	got := Limits{MaxTotal: 5, MaxWindow: 1}.withDefaults()
	if got.MaxTotal != 5 || got.MaxWindow != zstd.MinWindowSize || got.MaxMembers != DefaultLimits().MaxMembers {
		t.Errorf("Limits{MaxTotal: 5, MaxWindow: 1} = %+v", got)
	}
}

// TestSentinelsDistinct keeps the sentinels apart: only ErrTruncated (an
// ErrCorrupt) and ErrNotPcap (an ErrFormat) are kinds of another.
func TestSentinelsDistinct(t *testing.T) {
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range sentinels {
			if !yield(n) {
				return
			}
		}
	})
	for _, a := range names {
		for _, b := range names {
			want := a == b || a == "ErrTruncated" && b == "ErrCorrupt" || a == "ErrNotPcap" && b == "ErrFormat"
			if got := errors.Is(sentinels[a], sentinels[b]); got != want {
				t.Errorf("errors.Is(%s, %s) = %v", a, b, got)
			}
		}
	}
}

// TestOpenEveryCut cuts a bundle at many points, every one of its last 100
// bytes among them (the frame's last block and checksum): each cut must be
// refused as truncated, never accepted.
func TestOpenEveryCut(t *testing.T) {
	for _, data := range [][]byte{validBundle(t), concat(zst(tarOf(false, goodManifest())), zst(tarOf(true, reg(PathUname, []byte("x")))))} {
		for cut := 0; cut < len(data); cut++ {
			if cut < len(data)-100 && cut%61 != 0 {
				continue
			}
			b, err := OpenReader(bytes.NewReader(data[:cut]), int64(cut), Limits{})
			switch {
			case err == nil:
				b.Close()
				t.Errorf("cut at %d of %d: accepted", cut, len(data))
			case cut < len(zstdMagic):
				if !errors.Is(err, ErrNotBundle) {
					t.Errorf("cut at %d of %d: %v, want ErrNotBundle", cut, len(data), err)
				}
			case !errors.Is(err, ErrTruncated):
				t.Errorf("cut at %d of %d: %v, want ErrTruncated", cut, len(data), err)
			}
		}
	}
}

// TestOpenConcurrent reads every member from many goroutines at once, the
// streamed ones included (run with -race).
func TestOpenConcurrent(t *testing.T) {
	members := testMembers(200 << 10)
	p := writeBundle(t, t.TempDir(), members)
	b, err := Open(p, Limits{CacheMember: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	for range 8 {
		for _, m := range members {
			wg.Go(func() {
				got, err := b.ReadFile(m.name)
				if err != nil || !bytes.Equal(got, m.data) {
					t.Errorf("ReadFile(%s) = %d bytes, %v; want %d", m.name, len(got), err, len(m.data))
				}
			})
		}
	}
	wg.Wait()
}
