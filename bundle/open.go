package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Errors of Open, OpenReader and the files of a Bundle. Every error about the
// content of a bundle wraps exactly one of them (or ErrFormat), so callers
// decide with errors.Is; I/O errors of the file itself are passed through.
var (
	// ErrNotBundle is wrapped when the file is not a zstd-compressed tar
	// archive at all: empty, gzip, plain tar, random bytes.
	ErrNotBundle = errors.New("not a snapdiag bundle")

	// ErrUnsafeName is wrapped when a member's name could escape or confuse
	// a reader: absolute, with "..", not clean, not UTF-8, given twice, or
	// both a file and a directory.
	ErrUnsafeName = errors.New("unsafe member name")

	// ErrNotRegular is wrapped when a member is a symbolic or hard link, a
	// device, a fifo or anything else but a regular file or a directory.
	ErrNotRegular = errors.New("not a regular file")

	// ErrLimit is wrapped when the bundle goes over one of its Limits: a
	// member too large, too many members, a decompression bomb, a zstd window
	// too large.
	ErrLimit = errors.New("over reader limit")

	// ErrCorrupt is wrapped when the archive is damaged: corrupt zstd data,
	// a checksum mismatch, a broken tar header.
	ErrCorrupt = errors.New("corrupt bundle")

	// ErrTruncated is wrapped when the archive ends early, inside a member or
	// without the tar end-of-archive marker. It is a kind of damage:
	// errors.Is(err, ErrCorrupt) holds too.
	ErrTruncated error = &kindError{msg: "truncated bundle", parent: ErrCorrupt}
)

// kindError is a sentinel that is also a kind of another sentinel.
type kindError struct {
	msg    string
	parent error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.parent }

// Limits bound what Open reads from a bundle, so that a hostile file costs at
// most this much memory and time. A zero field takes its value from
// DefaultLimits.
//
// Memory while opening is about CacheTotal, plus MaxWindow for the zstd
// decoder, plus the index (MaxMembers names of at most 1 KiB each); every
// member file open at the same time that is not held in memory adds one more
// decoder.
type Limits struct {
	// MaxMembers bounds the entries of the archive (files and directories),
	// and separately the directories their names imply.
	MaxMembers int
	// MaxMemberSize bounds one member, as its header declares it.
	MaxMemberSize int64
	// MaxTotal bounds the decompressed bytes of the whole archive: the sizes
	// the headers declare, and the bytes actually decompressed (headers,
	// padding and what follows the end of the archive included).
	MaxTotal int64
	// MaxManifest bounds the size of manifest.json.
	MaxManifest int64
	// MaxWindow bounds the zstd window (the history the decoder must keep),
	// and so the decoder's memory. snapdiag writes 4 MiB windows; zstd -19
	// uses 8 MiB, --long up to 128 MiB.
	MaxWindow uint64
	// CacheMember is the size up to which a member is kept in memory at
	// Open. A larger member is decompressed again from the start of the
	// archive each time it is opened.
	CacheMember int64
	// CacheTotal bounds the memory of all members kept.
	CacheTotal int64

	// Partial makes Open accept a damaged bundle (truncated, or corrupt
	// after some members) as long as its manifest is intact: the Bundle
	// then holds the members that were complete before the damage, and
	// Damage says what was lost. zstd decodes whole blocks (up to 128 KiB
	// of members), so a cut also loses what shares its block. Hostile
	// content (unsafe names, links, limits) is refused whatever Partial
	// says. Without Partial, any damage is an error.
	Partial bool
}

// DefaultLimits returns the limits Open uses for a zero Limits: generous for
// any bundle snapdiag writes, small enough for a laptop.
func DefaultLimits() Limits {
	return Limits{
		MaxMembers:    100_000,
		MaxMemberSize: 1 << 30,
		MaxTotal:      4 << 30,
		MaxManifest:   8 << 20,
		MaxWindow:     64 << 20,
		CacheMember:   4 << 20,
		CacheTotal:    64 << 20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxMembers <= 0 {
		l.MaxMembers = d.MaxMembers
	}
	if l.MaxMemberSize <= 0 {
		l.MaxMemberSize = d.MaxMemberSize
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = d.MaxTotal
	}
	if l.MaxManifest <= 0 {
		l.MaxManifest = d.MaxManifest
	}
	if l.MaxWindow == 0 {
		l.MaxWindow = d.MaxWindow
	}
	// The zstd format has no smaller window.
	l.MaxWindow = max(l.MaxWindow, zstd.MinWindowSize)
	if l.CacheMember <= 0 {
		l.CacheMember = d.CacheMember
	}
	if l.CacheTotal <= 0 {
		l.CacheTotal = d.CacheTotal
	}
	return l
}

// maxTrailing bounds what may follow the tar end-of-archive marker. tar pads
// its output to whole records (10 KiB by default, 1 MiB with -b 2048); more
// than this is not padding but a decompression bomb.
const maxTrailing = 4 << 20

// MemberInfo describes one member of a bundle.
type MemberInfo struct {
	Name    string
	Size    int64
	Mode    fs.FileMode // permission bits only
	ModTime time.Time
	// Index is the member's position among the bundle's members, from 0.
	Index int
}

// Bundle is an opened bundle: its manifest, the index of its members, and
// the small members held in memory. It is an fs.FS (with ReadDir, Stat and
// ReadFile) whose directories are implied by the member names; it reads
// nothing onto disk. A Bundle is safe for concurrent use.
//
// Members larger than Limits.CacheMember are not held: opening one
// decompresses the archive again from the start up to that member, so a
// Bundle opened with Open keeps its file open until Close.
type Bundle struct {
	path     string
	size     int64
	lim      Limits
	manifest *Manifest
	members  []member
	byName   map[string]int
	dirs     map[string]*dir
	damage   error

	mu     sync.Mutex
	src    io.ReaderAt // nil when every member is in memory, or after Close
	closer io.Closer
	closed bool
}

type member struct {
	MemberInfo
	entry  int    // position among all tar entries, to find it again
	data   []byte // the content, when held in memory
	cached bool
}

type dir struct {
	info    *fileInfo
	entries []fs.DirEntry
}

// Open reads the bundle at path within lim: it checks every member and
// builds the index in one pass, without writing anything to disk. The error
// is one line naming what was wrong, wrapping one of the package's sentinel
// errors (ErrNotBundle, ErrUnsafeName, ErrNotRegular, ErrLimit, ErrCorrupt,
// ErrTruncated, ErrFormat), or the file's own error when it could not be
// read. Close the Bundle when done.
func Open(path string, lim Limits) (*Bundle, error) {
	f, fi, err := OpenFile(path)
	if errors.Is(err, ErrNotRegular) {
		return nil, fmt.Errorf("%w (%w)", err, ErrNotBundle)
	}
	if err != nil {
		return nil, err
	}
	b, err := open(f, fi.Size(), lim, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	if b.src == nil {
		// Every member is in memory: no need to hold the file.
		f.Close()
	} else {
		b.closer = f
	}
	return b, nil
}

// OpenReader is Open for a bundle of size bytes read through r, which must
// stay readable until the Bundle is no longer used. Close does not close r.
func OpenReader(r io.ReaderAt, size int64, lim Limits) (*Bundle, error) {
	return open(r, size, lim, "")
}

// Path is the file the bundle was opened from, "" for OpenReader.
func (b *Bundle) Path() string { return b.path }

// Manifest is the bundle's parsed manifest. It is shared: do not modify it.
func (b *Bundle) Manifest() *Manifest { return b.manifest }

// Members lists the bundle's members in archive order.
func (b *Bundle) Members() []MemberInfo {
	out := make([]MemberInfo, len(b.members))
	for i := range b.members {
		out[i] = b.members[i].MemberInfo
	}
	return out
}

// Damage says what was lost when a damaged bundle was opened with
// Limits.Partial, nil for an intact bundle. It wraps ErrCorrupt (and
// ErrTruncated when the bundle was cut short). Members before the damage
// were read completely, but when the damage is a bad zstd checksum their
// content could not be verified.
func (b *Bundle) Damage() error { return b.damage }

// Close releases the bundle's file. Members held in memory stay readable;
// opening the others then fails with fs.ErrClosed.
func (b *Bundle) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.src = nil
	if b.closer != nil {
		return b.closer.Close()
	}
	return nil
}

func (b *Bundle) name() string {
	if b.path == "" {
		return "bundle"
	}
	return b.path
}

// zstdMagic starts every zstd frame; skippable frames start with 0x5?
// followed by skippableMagic.
var (
	zstdMagic      = []byte{0x28, 0xb5, 0x2f, 0xfd}
	skippableMagic = []byte{0x2a, 0x4d, 0x18}
)

// sniff names the format of a file that is not zstd, for the error message.
func sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return " (gzip data)"
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")):
		return " (xz data)"
	case bytes.HasPrefix(head, []byte("BZh")):
		return " (bzip2 data)"
	case bytes.HasPrefix(head, []byte("\x04\x22\x4d\x18")):
		return " (lz4 data)"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return " (zip archive)"
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return " (uncompressed tar archive)"
	}
	return ""
}

func open(r io.ReaderAt, size int64, lim Limits, name string) (*Bundle, error) {
	b := &Bundle{path: name, size: size, lim: lim.withDefaults(), src: r}
	if err := b.scan(); err != nil {
		return nil, fmt.Errorf("read %s: %w", b.name(), err)
	}
	if b.damage != nil {
		b.damage = fmt.Errorf("read %s: %w", b.name(), b.damage)
	}
	b.build()
	if !slices.ContainsFunc(b.members, func(m member) bool { return !m.cached }) {
		b.src = nil
	}
	return b, nil
}

// source records the I/O errors of the file, to tell them from decoding errors.
type source struct {
	r   io.Reader
	err error
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// errTotal is the limiter's error; stream.fail turns it into ErrLimit.
var errTotal = errors.New("decompressed size over limit")

// limiter counts decompressed bytes and fails past left. It also notes when
// it returned io.EOF with no data: tar.Reader takes that for the end of the
// archive, but after a complete archive tar stops before reading it.
type limiter struct {
	r       io.Reader
	left    int64
	bareEOF bool
}

func (l *limiter) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if l.left <= 0 {
		// Only the end of the stream is allowed here.
		var one [1]byte
		n, err := io.ReadFull(l.r, one[:])
		if n > 0 {
			return 0, errTotal
		}
		if err == io.EOF {
			l.bareEOF = true
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if n == 0 && err == io.EOF {
		l.bareEOF = true
	}
	return n, err
}

// stream is one sequential pass over the archive.
type stream struct {
	src *source
	dec *zstd.Decoder
	lim *limiter
	tr  *tar.Reader
	max int64
	win uint64
}

func newStream(r io.ReaderAt, size int64, lim Limits) (*stream, error) {
	src := &source{r: io.NewSectionReader(r, 0, size)}
	dec, err := zstd.NewReader(bufio.NewReaderSize(src, 64<<10),
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(lim.MaxWindow),
		zstd.WithDecoderMaxMemory(lim.MaxWindow))
	if err != nil {
		return nil, fmt.Errorf("start zstd decoder: %w", err)
	}
	l := &limiter{r: dec, left: lim.MaxTotal}
	return &stream{src: src, dec: dec, lim: l, tr: tar.NewReader(l), max: lim.MaxTotal, win: lim.MaxWindow}, nil
}

func (s *stream) close() { s.dec.Close() }

// fail turns an error met at where into one that wraps the right sentinel.
func (s *stream) fail(where string, err error) error {
	switch {
	case s.src.err != nil:
		return fmt.Errorf("%s: %w", where, s.src.err)
	case errors.Is(err, errTotal):
		return fmt.Errorf("%s: %w: decompresses to more than %d bytes", where, ErrLimit, s.max)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return fmt.Errorf("%s: %w: zstd window larger than %d bytes", where, ErrLimit, s.win)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: %w", where, ErrTruncated)
	}
	return fmt.Errorf("%s: %w: %v", where, ErrCorrupt, err)
}

// next reads the next tar header; nil at the end of the archive. first is
// true for the first header, where a tar error means it is no tar at all.
func (s *stream) next(first bool, where func() string) (*tar.Header, error) {
	hdr, err := s.tr.Next()
	if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
		// Only with GODEBUG=tarinsecurepath=0; our own checks follow.
		err = nil
	}
	if err == io.EOF {
		switch {
		case first && s.lim.left == s.max:
			return nil, fmt.Errorf("%w: zstd data, but empty", ErrNotBundle)
		case s.lim.bareEOF:
			return nil, fmt.Errorf("%s: %w: no end-of-archive marker", where(), ErrTruncated)
		}
		return nil, nil
	}
	if first && errors.Is(err, tar.ErrHeader) && s.src.err == nil {
		return nil, fmt.Errorf("%w: zstd data, but not a tar archive", ErrNotBundle)
	}
	if err != nil {
		return nil, s.fail(where(), err)
	}
	return hdr, nil
}

// scan is the one pass of Open: it checks every header, keeps the small
// members and the manifest, and stops at the first problem. With
// Limits.Partial, damage after the manifest ends the scan without error and
// is kept in b.damage.
func (b *Bundle) scan() error {
	head := make([]byte, 512)
	n, err := b.src.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return err
	}
	head = head[:n]
	if n == 0 {
		return fmt.Errorf("%w: empty file", ErrNotBundle)
	}
	if !bytes.HasPrefix(head, zstdMagic) &&
		!(n >= 4 && head[0]&0xf0 == 0x50 && bytes.Equal(head[1:4], skippableMagic)) {
		return fmt.Errorf("%w: not a zstd file%s", ErrNotBundle, sniff(head))
	}

	s, err := newStream(b.src, b.size, b.lim)
	if err != nil {
		return err
	}
	defer s.close()

	var (
		lim      = b.lim
		entries  int
		declared int64
		cached   int64
		last     string              // the last complete member, for messages
		files    = map[string]bool{} // every regular member seen
		dirs     = map[string]bool{} // every directory, named or implied
	)
	where := func() string {
		if last == "" {
			return "start of archive"
		}
		return fmt.Sprintf("header after member %s", quote(last))
	}
	// damaged ends the scan: a damaged bundle is an error, unless Partial
	// and the manifest is safe.
	damaged := func(err error) error {
		if lim.Partial && b.manifest != nil && errors.Is(err, ErrCorrupt) {
			b.damage = err
			return nil
		}
		return err
	}
	for ; ; entries++ {
		hdr, err := s.next(entries == 0, where)
		if err != nil {
			return damaged(err)
		}
		if hdr == nil {
			break
		}
		if entries >= lim.MaxMembers {
			return fmt.Errorf("%w: more than %d members", ErrLimit, lim.MaxMembers)
		}
		name := hdr.Name
		if hdr.Typeflag == tar.TypeDir {
			name = strings.TrimSuffix(name, "/")
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			// pax global headers (git archive, some tar builds) describe
			// the archive, not a file.
			continue
		}
		if !ValidName(name) || !fs.ValidPath(name) {
			return fmt.Errorf("member %s: %w", quote(hdr.Name), ErrUnsafeName)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
		case tar.TypeDir:
			// Directories are implied by the names; an entry for one is
			// tolerated and ignored.
			if files[name] {
				return fmt.Errorf("member %s: %w: both a file and a directory", quote(hdr.Name), ErrUnsafeName)
			}
			if err := addDirs(dirs, name, files, lim.MaxMembers); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("member %s: %w: %s", quote(name), ErrNotRegular, describe(hdr))
		}

		if files[name] {
			return fmt.Errorf("member %s: %w: given twice", quote(name), ErrUnsafeName)
		}
		if dirs[name] {
			return fmt.Errorf("member %s: %w: both a file and a directory", quote(name), ErrUnsafeName)
		}
		files[name] = true
		if err := addDirs(dirs, path.Dir(name), files, lim.MaxMembers); err != nil {
			return err
		}
		if hdr.Size > lim.MaxMemberSize {
			return fmt.Errorf("member %s: %w: %d bytes, more than the %d allowed for a member", quote(name), ErrLimit, hdr.Size, lim.MaxMemberSize)
		}
		if name == PathManifest && hdr.Size > lim.MaxManifest {
			return fmt.Errorf("member %s: %w: %d bytes, more than the %d allowed for the manifest", quote(name), ErrLimit, hdr.Size, lim.MaxManifest)
		}
		declared += hdr.Size
		if declared > lim.MaxTotal {
			return fmt.Errorf("member %s: %w: members declare more than %d bytes in all", quote(name), ErrLimit, lim.MaxTotal)
		}

		m := member{
			MemberInfo: MemberInfo{
				Name:    name,
				Size:    hdr.Size,
				Mode:    fs.FileMode(hdr.Mode).Perm(),
				ModTime: hdr.ModTime,
				Index:   len(b.members),
			},
			entry: entries,
		}
		keep := name == PathManifest || hdr.Size <= lim.CacheMember && cached+hdr.Size <= lim.CacheTotal
		var got int64
		if keep {
			m.data = make([]byte, hdr.Size)
			m.cached = true
			var n int
			n, err = io.ReadFull(s.tr, m.data)
			got = int64(n)
			cached += hdr.Size
		} else {
			got, err = io.Copy(io.Discard, s.tr)
			if err == nil && got < hdr.Size {
				err = io.ErrUnexpectedEOF
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return damaged(s.fail(fmt.Sprintf("member %s, at byte %d of %d", quote(name), got, hdr.Size), err))
		}
		if name == PathManifest {
			// Parse at once: a bundle of another format fails before the
			// rest of the archive is read.
			mf, err := ParseManifest(m.data)
			if err != nil {
				return fmt.Errorf("member %s: %w", quote(name), err)
			}
			b.manifest = mf
		}
		b.members = append(b.members, m)
		last = name
	}
	if b.manifest == nil {
		return fmt.Errorf("no %s: %w", PathManifest, ErrFormat)
	}
	// Read to the end of the zstd stream: it verifies the frame checksums
	// and catches a stream cut after the end of the archive.
	got, err := io.Copy(io.Discard, io.LimitReader(s.lim, maxTrailing+1))
	if err != nil {
		return damaged(s.fail("after the end of the archive", err))
	}
	if got > maxTrailing {
		return fmt.Errorf("%w: more than %d bytes after the end of the archive", ErrLimit, maxTrailing)
	}
	return nil
}

// addDirs records dir and its parents as directories, failing when one of
// them is a file or when there are more than maxDirs.
func addDirs(dirs map[string]bool, dir string, files map[string]bool, maxDirs int) error {
	for dir != "." && !dirs[dir] {
		if files[dir] {
			return fmt.Errorf("member %s: %w: both a file and a directory", quote(dir), ErrUnsafeName)
		}
		if len(dirs) >= maxDirs {
			return fmt.Errorf("%w: more than %d directories", ErrLimit, maxDirs)
		}
		dirs[dir] = true
		dir = path.Dir(dir)
	}
	return nil
}

// quote quotes a member name for a message, cut short: a hostile name (a
// PAX path record) can be a megabyte long.
func quote(name string) string {
	const max = 200
	if len(name) > max {
		return strconv.Quote(name[:max]) + "..."
	}
	return strconv.Quote(name)
}

// describe says what a non-regular member is.
func describe(hdr *tar.Header) string {
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		return "symbolic link to " + quote(hdr.Linkname)
	case tar.TypeLink:
		return "hard link to " + quote(hdr.Linkname)
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return fmt.Sprintf("tar type %q", hdr.Typeflag)
}

// build makes the lookup table and the directories implied by the names.
func (b *Bundle) build() {
	b.byName = make(map[string]int, len(b.members))
	b.dirs = map[string]*dir{".": {info: dirInfo(".")}}
	var add func(name string) *dir
	add = func(name string) *dir {
		if d, ok := b.dirs[name]; ok {
			return d
		}
		d := &dir{info: dirInfo(name)}
		b.dirs[name] = d
		parent := add(path.Dir(name))
		parent.entries = append(parent.entries, d.info)
		return d
	}
	for i := range b.members {
		m := &b.members[i]
		b.byName[m.Name] = i
		d := add(path.Dir(m.Name))
		d.entries = append(d.entries, memberInfo(m))
	}
	for _, d := range b.dirs {
		slices.SortFunc(d.entries, func(x, y fs.DirEntry) int { return strings.Compare(x.Name(), y.Name()) })
	}
}

// fileInfo describes a member or a directory; it is both an fs.FileInfo and
// an fs.DirEntry.
type fileInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
}

func dirInfo(name string) *fileInfo {
	return &fileInfo{name: path.Base(name), mode: fs.ModeDir | 0o700}
}

func memberInfo(m *member) *fileInfo {
	return &fileInfo{name: path.Base(m.Name), size: m.Size, mode: m.Mode, modTime: m.ModTime}
}

func (fi *fileInfo) Name() string               { return fi.name }
func (fi *fileInfo) Size() int64                { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode          { return fi.mode }
func (fi *fileInfo) ModTime() time.Time         { return fi.modTime }
func (fi *fileInfo) IsDir() bool                { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any                   { return nil }
func (fi *fileInfo) Type() fs.FileMode          { return fi.mode.Type() }
func (fi *fileInfo) Info() (fs.FileInfo, error) { return fi, nil }
func (fi *fileInfo) String() string             { return fs.FormatFileInfo(fi) }

var (
	errIsDir  = errors.New("is a directory")
	errNotDir = errors.New("not a directory")
)

// Open opens a member or a directory of the bundle (fs.FS).
func (b *Bundle) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if i, ok := b.byName[name]; ok {
		m := &b.members[i]
		if m.cached {
			return &memFile{info: memberInfo(m), r: bytes.NewReader(m.data)}, nil
		}
		return &streamFile{b: b, m: m, info: memberInfo(m)}, nil
	}
	if d, ok := b.dirs[name]; ok {
		return &dirFile{d: d, path: name}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// Stat describes a member or a directory (fs.StatFS).
func (b *Bundle) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	if i, ok := b.byName[name]; ok {
		return memberInfo(&b.members[i]), nil
	}
	if d, ok := b.dirs[name]; ok {
		return d.info, nil
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

// ReadDir lists a directory, sorted by name (fs.ReadDirFS).
func (b *Bundle) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	if d, ok := b.dirs[name]; ok {
		return slices.Clone(d.entries), nil
	}
	if _, ok := b.byName[name]; ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
}

// ReadFile returns a member's content (fs.ReadFileFS). The slice is the
// caller's.
func (b *Bundle) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrInvalid}
	}
	i, ok := b.byName[name]
	if !ok {
		if _, ok := b.dirs[name]; ok {
			return nil, &fs.PathError{Op: "readfile", Path: name, Err: errIsDir}
		}
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrNotExist}
	}
	m := &b.members[i]
	if m.cached {
		return bytes.Clone(m.data), nil
	}
	f := &streamFile{b: b, m: m, info: memberInfo(m)}
	defer f.Close()
	data := make([]byte, m.Size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	return data, nil
}

// memFile is a member held in memory.
type memFile struct {
	info   *fileInfo
	r      *bytes.Reader
	closed bool
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *memFile) Read(p []byte) (int, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: fs.ErrClosed}
	}
	return f.r.Read(p)
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: fs.ErrClosed}
	}
	return f.r.ReadAt(p, off)
}

func (f *memFile) Seek(off int64, whence int) (int64, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "seek", Path: f.info.name, Err: fs.ErrClosed}
	}
	return f.r.Seek(off, whence)
}

func (f *memFile) Close() error {
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.info.name, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}

// streamFile is a member read by decompressing the archive again, from the
// start up to the member. The pass starts at the first Read.
type streamFile struct {
	b      *Bundle
	m      *member
	info   *fileInfo
	s      *stream
	r      io.Reader
	off    int64
	err    error
	closed bool
}

func (f *streamFile) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *streamFile) Read(p []byte) (int, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.m.Name, Err: fs.ErrClosed}
	}
	if f.err != nil {
		return 0, f.err
	}
	if f.r == nil {
		if err := f.start(); err != nil {
			f.err = &fs.PathError{Op: "read", Path: f.m.Name, Err: err}
			return 0, f.err
		}
	}
	n, err := f.r.Read(p)
	f.off += int64(n)
	switch {
	case err == io.EOF && f.off < f.m.Size:
		err = io.ErrUnexpectedEOF
		fallthrough
	case err != nil && err != io.EOF:
		f.err = &fs.PathError{Op: "read", Path: f.m.Name, Err: f.s.fail(fmt.Sprintf("at byte %d", f.off), err)}
		return n, f.err
	}
	return n, err
}

// start decompresses the archive up to the member and checks that it is
// the one Open indexed.
func (f *streamFile) start() error {
	f.b.mu.Lock()
	src := f.b.src
	f.b.mu.Unlock()
	if src == nil {
		return fs.ErrClosed
	}
	s, err := newStream(src, f.b.size, f.b.lim)
	if err != nil {
		return err
	}
	f.s = s
	for i := 0; ; i++ {
		hdr, err := s.next(i == 0, func() string { return fmt.Sprintf("entry %d", i) })
		if err != nil {
			return err
		}
		if hdr == nil {
			break
		}
		if i == f.m.entry {
			if hdr.Typeflag != tar.TypeReg || hdr.Name != f.m.Name || hdr.Size != f.m.Size {
				break
			}
			f.r = s.tr
			return nil
		}
	}
	return fmt.Errorf("%w: the bundle changed since it was opened", ErrCorrupt)
}

func (f *streamFile) Close() error {
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.m.Name, Err: fs.ErrClosed}
	}
	f.closed = true
	if f.s != nil {
		f.s.close()
	}
	return nil
}

// dirFile is an open directory.
type dirFile struct {
	d      *dir
	path   string
	off    int
	closed bool
}

func (f *dirFile) Stat() (fs.FileInfo, error) { return f.d.info, nil }

func (f *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: f.path, Err: errIsDir}
}

func (f *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if f.closed {
		return nil, &fs.PathError{Op: "readdir", Path: f.path, Err: fs.ErrClosed}
	}
	rest := f.d.entries[f.off:]
	if n <= 0 {
		f.off += len(rest)
		return slices.Clone(rest), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	f.off += n
	return slices.Clone(rest[:n]), nil
}

func (f *dirFile) Close() error {
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.path, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}
