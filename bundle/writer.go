package bundle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Staging and temporary names start with this prefix, so a later run can find
// and remove what a killed run left behind (CleanStale) without touching
// anything else in the directory.
const tempPrefix = ".snapdiag-tmp-"

// DefaultMaxBytes bounds what a Writer stages on disk, all members together.
const DefaultMaxBytes = 1 << 30

// ErrClosed is returned by writes after the Writer was committed or aborted.
var ErrClosed = errors.New("bundle writer closed")

// ErrTooLarge is returned when a write would take the staged bundle past its
// byte limit.
var ErrTooLarge = errors.New("bundle size limit reached")

// Writer stages bundle members in a private folder of the target directory and
// commits them into one .tar.zst, atomically: the archive is written under a
// temporary name, synced, and renamed into place only when complete.
//
// A Writer is safe for concurrent use. Members become part of the bundle only
// once they are complete (WriteFile returned, or the io.WriteCloser of Create
// was closed without error); a member still being written when Commit runs is
// left out, so a collector cut by the deadline cannot leave half a file in.
type Writer struct {
	st    *state
	owner string
	// prefix is put before every member name given (Under).
	prefix string
}

type state struct {
	dir      string // target directory
	staging  string // private staging folder inside dir
	maxBytes int64

	mu      sync.Mutex
	closed  bool
	bytes   int64
	members map[string]string   // complete member name -> owner
	open    map[string]bool     // members being written
	notes   map[string][]string // owner -> notes

	// Small members stay in memory: staging a thousand sysctl files on disk
	// costs a create, a write and a rename each, which on a slow disk is most
	// of a capture's time. memBytes bounds what is held.
	mem      map[string][]byte
	memBytes int64

	// filter, when set, rewrites every member before it is stored, and the
	// manifest and the name at Commit (SetFilter).
	filter Filter

	// beforeCommit, when set, is called with the bundle's final path just
	// before it appears there (SetBeforeCommit).
	beforeCommit func(path string, m *Manifest)

	// staged holds the uncompressed size of each member staged on disk. A
	// staged member is already compressed: one zstd frame holding its data and
	// tar padding, so Commit copies it into the archive without compressing
	// it again (see writeArchive).
	staged map[string]int64

	// idle holds encoders whose member is done, for the next member or
	// Commit: a fresh encoder is a MiB of tables and history the process
	// must fault in, which on a virtual machine costs more than resetting
	// one already warm.
	idle []idleEncoder

	// chunks holds staging buffers (stageChunk bytes) whose member is
	// done, for the next staged member: the socket summary, staged after
	// the socket table, takes the table's rather than half a MiB of fresh
	// pages.
	chunks [][]byte
}

// idleEncoder is an encoder kept for reuse, with the buffered writer it
// writes to and the bytes it has compressed: from warmEncoder on, its
// history buffer is all faulted in.
type idleEncoder struct {
	zw *zstd.Encoder
	bw *bufio.Writer
	in int64
}

// warmEncoder is what an encoder compresses before its history, a MiB, is
// all in memory.
const warmEncoder = 1 << 20

// encoder returns an idle encoder reset to write to w through its
// buffered writer, or a new one.
func (st *state) encoder(w io.Writer) (idleEncoder, error) {
	st.mu.Lock()
	if n := len(st.idle); n > 0 {
		e := st.idle[n-1]
		st.idle = st.idle[:n-1]
		st.mu.Unlock()
		e.bw.Reset(w)
		e.zw.Reset(e.bw)
		return e, nil
	}
	st.mu.Unlock()
	bw := bufio.NewWriterSize(w, 64<<10)
	zw, err := newEncoder(bw)
	return idleEncoder{zw: zw, bw: bw}, err
}

// commitEncoder returns the encoder of the archive's first frame: a warm
// idle one, or else a new one with a small history. The frame is the
// small members, a MiB or two of tar blocks, mostly padding; through a new
// encoder of the members' kind they would fault in its whole MiB of
// history, where a low-memory one keeps the window in 384 KiB, its shifts
// of that history costing far less than the pages. The window stays 256
// KiB: in a capture of an empty namespace, 128 KiB made the bundle 17%
// larger (the listen-path lines of the kernel log repeat its tail).
func (st *state) commitEncoder(w io.Writer) (*zstd.Encoder, error) {
	st.mu.Lock()
	for i, e := range st.idle {
		if e.in >= warmEncoder {
			st.idle = slices.Delete(st.idle, i, i+1)
			st.mu.Unlock()
			e.zw.Reset(w)
			return e.zw, nil
		}
	}
	st.mu.Unlock()
	return zstd.NewWriter(w,
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(encoderWindow),
		zstd.WithLowerEncoderMem(true),
		zstd.WithEncoderLevel(zstd.SpeedFastest))
}

// encoderWindow is the window of every encoder (newEncoder).
const encoderWindow = 256 << 10

// maxIdleEncoders bounds the encoders kept for reuse: as many as members
// are usually written at once.
const maxIdleEncoders = 2

// release keeps e, whose frame is closed and flushed, for reuse.
func (st *state) release(e idleEncoder) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.idle) < maxIdleEncoders {
		st.idle = append(st.idle, e)
	}
}

// chunk returns a staging buffer, empty, kept or new.
func (st *state) chunk() []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	if n := len(st.chunks); n > 0 {
		b := st.chunks[n-1]
		st.chunks = st.chunks[:n-1]
		return b[:0]
	}
	return make([]byte, 0, stageChunk)
}

// keepChunk keeps b, a staging buffer no longer used, for the next member:
// up to the buffers of as many members as encoders are kept, 2 MiB.
func (st *state) keepChunk(b []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.chunks) < maxIdleEncoders*stageBuffers {
		st.chunks = append(st.chunks, b)
	}
}

// Members up to memMemberMax bytes are held in memory, within memTotalMax for
// all of them; larger ones, and streams, are staged on disk.
const (
	memMemberMax = 256 << 10
	memTotalMax  = 32 << 20
)

// NewWriter prepares a Writer that will commit into dir. It creates dir's
// staging folder; dir itself must exist and be writable.
func NewWriter(dir string, maxBytes int64) (*Writer, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	staging, err := os.MkdirTemp(dir, tempPrefix+"stage-")
	if err != nil {
		return nil, fmt.Errorf("create staging folder in %s: %w", dir, err)
	}
	return &Writer{st: &state{
		dir:      dir,
		staging:  staging,
		maxBytes: maxBytes,
		members:  map[string]string{},
		open:     map[string]bool{},
		notes:    map[string][]string{},
		mem:      map[string][]byte{},
		staged:   map[string]int64{},
	}}, nil
}

// Filter rewrites a bundle while it is written: each member's bytes on
// their way in, before any of them is held in memory or staged on disk, and
// the manifest and the bundle's file name at Commit. capture --redact
// redacts through one, so that no unredacted byte is ever written to disk,
// not even to the staging folder of a capture that is killed.
type Filter interface {
	// Member returns a writer that rewrites the bytes of member name into
	// dst. Close ends the member; an error from it or from Write keeps the
	// member out of the bundle. Member is called from several goroutines
	// at once.
	Member(name string, dst io.Writer) io.WriteCloser
	// Commit rewrites the manifest and the bundle's file name.
	Commit(name string, m *Manifest) (string, *Manifest, error)
}

// SetFilter makes every member written from now on, and the manifest and
// name given to Commit, go through f. Call it before writing any member.
func (w *Writer) SetFilter(f Filter) {
	w.st.mu.Lock()
	defer w.st.mu.Unlock()
	w.st.filter = f
}

// SetBeforeCommit makes Commit call f with the path the bundle is about to
// take and the manifest it holds, after the archive is written and synced
// and just before the bundle appears under that path. What f writes (an
// upload's pending sidecar) therefore exists before anyone can see the
// bundle, and a process killed between the two leaves f's file without a
// bundle, never the bundle without it. f is not called for a name another
// file already holds; should one appear there between the call and the
// link (a writer not holding the directory's capture lock), Commit tries
// the next name and calls f again. f reports its own errors: the bundle is
// committed whatever f did, since a bundle beats none.
func (w *Writer) SetBeforeCommit(f func(path string, m *Manifest)) {
	w.st.mu.Lock()
	defer w.st.mu.Unlock()
	w.st.beforeCommit = f
}

// filterFile is a streamed member on its way through the Filter.
type filterFile struct {
	io.WriteCloser // the filter's writer, into inner
	inner          discarder
}

// discarder is a member being written (*memberFile, *memStream) that can
// be dropped, giving its name back.
type discarder interface {
	io.WriteCloser
	discard()
}

// Discard drops f, a member Create returned and not yet closed, from the
// bundle: what was written of it is freed at once, and its name may be
// written again. A member neither closed nor discarded is left out of the
// bundle too, but until the process exits it keeps its compressor
// goroutine, its staging buffers and its open staging file; a collector
// that cannot finish a member (a socket table cut by the deadline, which
// must not pass for the whole one) discards it instead of closing it.
func Discard(f io.WriteCloser) {
	if d, ok := f.(discarder); ok {
		d.discard()
	}
}

func (f *filterFile) Close() error {
	if err := f.WriteCloser.Close(); err != nil {
		f.inner.discard()
		return err
	}
	return f.inner.Close()
}

func (f *filterFile) discard() {
	f.WriteCloser.Close()
	f.inner.discard()
}

// For returns a view of w whose members are attributed to owner (a collector's
// name), so the manifest can list the files of each collector.
func (w *Writer) For(owner string) *Writer { return &Writer{st: w.st, owner: owner, prefix: w.prefix} }

// Under returns a view of w whose member names are inside folder dir
// (NetNSDir): a collector writing PathSocketsTCP through it writes
// dir/sockets/tcp.jsonl. Views nest.
func (w *Writer) Under(dir string) *Writer {
	return &Writer{st: w.st, owner: w.owner, prefix: w.prefix + dir + "/"}
}

// WriteFile stores one complete member. The Writer keeps its own copy of data.
func (w *Writer) WriteFile(name string, data []byte) error {
	name = w.prefix + name
	if f := w.filter(); f != nil {
		var buf bytes.Buffer
		fw := f.Member(name, &buf)
		_, err := fw.Write(data)
		if cerr := fw.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("filter %s: %w", name, err)
		}
		data = buf.Bytes()
	}
	if len(data) <= memMemberMax {
		if ok, err := w.writeMem(name, data); ok || err != nil {
			return err
		}
	}
	f, err := w.create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.discard()
		return err
	}
	return f.Close()
}

func (w *Writer) filter() Filter {
	w.st.mu.Lock()
	defer w.st.mu.Unlock()
	return w.st.filter
}

// writeMem holds a small member in memory; it reports false when the memory
// budget is spent and the member must go to disk.
func (w *Writer) writeMem(name string, data []byte) (bool, error) {
	if !ValidName(name) || name == PathManifest { // Commit writes the manifest
		return false, fmt.Errorf("invalid member name %q", name)
	}
	st := w.st
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.closed:
		return false, ErrClosed
	case st.staging != "" && st.memBytes+int64(len(data)) > memTotalMax:
		return false, nil
	case st.bytes+int64(len(data)) > st.maxBytes:
		return false, fmt.Errorf("%s: %w (%d bytes)", name, ErrTooLarge, st.maxBytes)
	}
	if _, dup := st.members[name]; dup || st.open[name] {
		return false, fmt.Errorf("member %s written twice", name)
	}
	st.mem[name] = append([]byte(nil), data...)
	st.memBytes += int64(len(data))
	st.bytes += int64(len(data))
	st.members[name] = w.owner
	return true, nil
}

// Create starts a member that is written as a stream. The member is in the
// bundle only if Close returns nil.
func (w *Writer) Create(name string) (io.WriteCloser, error) {
	name = w.prefix + name
	inner, err := w.create(name)
	if err != nil {
		return nil, err
	}
	if f := w.filter(); f != nil {
		return &filterFile{WriteCloser: f.Member(name, inner), inner: inner}, nil
	}
	return inner, nil
}

// create starts a member written as a stream, unfiltered.
func (w *Writer) create(name string) (discarder, error) {
	if !ValidName(name) || name == PathManifest { // Commit writes the manifest
		return nil, fmt.Errorf("invalid member name %q", name)
	}
	st := w.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return nil, ErrClosed
	}
	if _, dup := st.members[name]; dup || st.open[name] {
		return nil, fmt.Errorf("member %s written twice", name)
	}
	if st.staging == "" || !isLarge(name) {
		// A small member streamed into a committing Writer is held in
		// memory like WriteFile's, and goes to disk only if it outgrows the
		// memory bounds: on a nearly full disk the large members staged
		// before it (the socket table) may have taken the last free blocks,
		// and only large members may be lost to a full disk.
		st.open[name] = true
		return &memStream{w: w, name: name, spill: st.staging != ""}, nil
	}
	f, err := w.stage(name)
	if err != nil {
		return nil, err
	}
	st.open[name] = true
	return f, nil
}

// stage creates the on-disk staging file of a member. st.mu must be held.
func (w *Writer) stage(name string) (*memberFile, error) {
	p := filepath.Join(w.st.staging, "m", filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("stage %s: %w", name, err)
	}
	f, err := os.OpenFile(p+".part", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", name, err)
	}
	return newMemberFile(w, name, p, f), nil
}

// NewMemWriter returns a Writer that holds every member in memory, within
// maxBytes, and is never committed: Take hands the members over. The
// watchdog takes its history samples through it, with the same samplers a
// capture uses.
func NewMemWriter(maxBytes int64) *Writer {
	if maxBytes <= 0 {
		maxBytes = memTotalMax
	}
	return &Writer{st: &state{
		maxBytes: maxBytes,
		members:  map[string]string{},
		open:     map[string]bool{},
		notes:    map[string][]string{},
		mem:      map[string][]byte{},
	}}
}

// Take seals a Writer made by NewMemWriter and returns its complete members.
func (w *Writer) Take() map[string][]byte {
	st := w.st
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closed = true
	return st.mem
}

// memStream is a streamed member held in memory: every member of a memory
// Writer, and the small members of a committing one. With spill set, a
// member that outgrows memMemberMax, or the memory budget, moves to a
// staging file and carries on there.
type memStream struct {
	w     *Writer
	name  string
	buf   []byte
	done  bool
	spill bool
	file  *memberFile // the staging file it spilled to
}

func (m *memStream) Write(p []byte) (int, error) {
	st := m.w.st
	st.mu.Lock()
	if m.file == nil && m.spill && !m.done && !st.closed && len(m.buf)+len(p) > memMemberMax {
		if err := m.spillLocked(); err != nil {
			st.mu.Unlock()
			return 0, err
		}
	}
	if m.file != nil {
		st.mu.Unlock()
		return m.file.Write(p)
	}
	defer st.mu.Unlock()
	// A closed member's buffer is already in st.mem: appending to it would
	// count bytes toward the limit that no member holds, or worse, grow a
	// member that was complete.
	if m.done || st.closed {
		return 0, ErrClosed
	}
	if st.bytes+int64(len(p)) > st.maxBytes {
		return 0, fmt.Errorf("%s: %w (%d bytes)", m.name, ErrTooLarge, st.maxBytes)
	}
	st.bytes += int64(len(p))
	if need := len(m.buf) + len(p); need > cap(m.buf) {
		// Doubled rather than grown by append's quarter: each buffer is
		// fresh pages, and a 700 KiB socket summary went through seven
		// before it spilled.
		c := 2 * cap(m.buf)
		if m.spill {
			// A stream written in large pieces (the summary's 64 KiB)
			// is likely to reach the bound: it gets the bound's buffer
			// at once, of which only the pages written are faulted in.
			if len(p) >= memMemberMax/4 {
				c = memMemberMax
			}
			c = min(c, memMemberMax)
		}
		m.buf = append(make([]byte, 0, max(c, need)), m.buf...)
	}
	m.buf = append(m.buf, p...)
	return len(p), nil
}

// spillLocked moves the member to a staging file, with what it holds so far.
// st.mu must be held; the buffered bytes are counted again as the file takes
// them.
func (m *memStream) spillLocked() error {
	st := m.w.st
	f, err := m.w.stage(m.name)
	if err != nil {
		return err
	}
	st.bytes -= int64(len(m.buf))
	buf := m.buf
	m.buf, m.file = nil, f
	st.mu.Unlock()
	_, err = f.Write(buf)
	st.mu.Lock()
	return err
}

// discard drops a member that will not be completed.
func (m *memStream) discard() {
	if m.file != nil {
		m.file.discard()
		return
	}
	st := m.w.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if m.done {
		return
	}
	m.done = true
	delete(st.open, m.name)
}

func (m *memStream) Close() error {
	st := m.w.st
	st.mu.Lock()
	if m.file == nil && m.spill && !m.done && !st.closed && st.memBytes+int64(len(m.buf)) > memTotalMax {
		if err := m.spillLocked(); err != nil {
			st.mu.Unlock()
			m.discard()
			return err
		}
	}
	if m.file != nil {
		st.mu.Unlock()
		return m.file.Close()
	}
	defer st.mu.Unlock()
	if m.done {
		return nil
	}
	m.done = true
	delete(st.open, m.name)
	if st.closed {
		return ErrClosed
	}
	st.mem[m.name] = m.buf
	st.memBytes += int64(len(m.buf))
	st.members[m.name] = m.w.owner
	return nil
}

// memberFile is a member staged on disk, compressed as it is written. The
// collector's writes fill buffers; a goroutine compresses full ones, so a
// large socket table is encoded and compressed on both CPUs at once, and
// Commit only copies the finished frame.
type memberFile struct {
	w    *Writer
	name string
	path string
	f    *os.File
	err  error
	done bool
	size int64

	cur   []byte
	full  chan []byte // buffers to compress
	free  chan []byte // buffers to reuse
	nbuf  int         // buffers made, at most stageBuffers
	zdone chan error  // the compressor's result
}

// stageChunk is the size of the buffers handed to the compressor, and
// stageBuffers how many a member uses at most: one being filled, up to
// stageBuffers-2 queued, one being compressed. 64 KiB rather than a zstd
// block's 128: the encoder gathers its block either way, and a member
// that is written slowly or is small makes fewer pages to fault in. A
// MiB in all, for a member written faster than it is compressed: with 4
// buffers, the socket table's encoder waited for the compressor whenever
// that fell behind for a moment, and the dump behind the encoder waited
// too. Raised together with sockdiag's receive buffers (see recvBuffers
// there for what that gained: a little, at most, on two CPUs).
const (
	stageChunk   = 64 << 10
	stageBuffers = 16
)

func newMemberFile(w *Writer, name, path string, f *os.File) *memberFile {
	m := &memberFile{
		w: w, name: name, path: path, f: f,
		nbuf:  1, // cur, taken at the first write
		full:  make(chan []byte, stageBuffers-2),
		free:  make(chan []byte, stageBuffers),
		zdone: make(chan error, 1),
	}
	go m.compress()
	return m
}

// compress runs in its own goroutine: it compresses full buffers into one
// zstd frame, then the tar padding that rounds the member to 512 bytes.
func (m *memberFile) compress() {
	e, err := m.w.st.encoder(m.f)
	var n int64
	for b := range m.full {
		if err == nil {
			_, err = e.zw.Write(b)
			n += int64(len(b))
		}
		select {
		case m.free <- b[:0]:
		default:
		}
	}
	if err == nil {
		_, err = e.zw.Write(zeroBlock[:(512-n%512)%512])
	}
	if err == nil {
		err = e.zw.Close()
	}
	if err == nil {
		err = e.bw.Flush()
	}
	if err == nil {
		e.in += n
		m.w.st.release(e)
	}
	m.zdone <- err
}

// send hands the current buffer to the compressor and takes a fresh one.
func (m *memberFile) send() {
	if len(m.cur) == 0 {
		return
	}
	m.full <- m.cur
	select {
	case b := <-m.free:
		m.cur = b
	default:
		// A fresh buffer each time the compressor is behind, up to
		// stageBuffers; then wait for one: without a bound, a member
		// written much faster than it is compressed would be buffered
		// whole. The compressor returns every buffer it is given,
		// whatever its error.
		if m.nbuf < stageBuffers {
			m.nbuf++
			m.cur = m.w.st.chunk()
		} else {
			m.cur = <-m.free
		}
	}
}

func (m *memberFile) Write(p []byte) (int, error) {
	if m.done && m.err == nil {
		return 0, ErrClosed // the compressor has stopped
	}
	if m.err != nil {
		return 0, m.err
	}
	st := m.w.st
	st.mu.Lock()
	switch {
	case st.closed:
		m.err = ErrClosed
	case st.bytes+int64(len(p)) > st.maxBytes:
		m.err = fmt.Errorf("%s: %w (%d bytes)", m.name, ErrTooLarge, st.maxBytes)
	default:
		st.bytes += int64(len(p))
	}
	st.mu.Unlock()
	if m.err != nil {
		return 0, m.err
	}
	written := len(p)
	if m.cur == nil {
		m.cur = st.chunk()
	}
	if spare := m.cur[len(m.cur):cap(m.cur)]; len(p) > 0 && len(p) <= len(spare) && &p[0] == &spare[0] {
		// p was appended to AvailableBuffer's buffer: it is in place.
		m.cur = m.cur[:len(m.cur)+len(p)]
		p = nil
		if len(m.cur) == cap(m.cur) {
			m.send()
		}
	}
	for len(p) > 0 {
		k := min(len(p), cap(m.cur)-len(m.cur))
		m.cur = append(m.cur, p[:k]...)
		p = p[k:]
		if len(m.cur) == cap(m.cur) {
			m.send()
		}
	}
	m.size += int64(written)
	return written, nil
}

// AvailableBuffer returns an empty buffer over the room left in the
// member's staging buffer, at least room bytes of it (a staging buffer
// with less left goes to the compressor as it is, and a fresh one is
// taken), for bytes that are appended to it and then passed to the next
// Write, which takes them where they are instead of copying them: the
// idiom of bufio.Writer.AvailableBuffer. The buffer is valid until that
// Write; a room larger than a staging buffer is not given, and what
// outgrows the buffer is copied as any Write's bytes are. The socket
// table writes its rows so, sparing a copy of every byte of it.
func (m *memberFile) AvailableBuffer(room int) []byte {
	if m.done || m.err != nil {
		return nil
	}
	if m.cur == nil {
		m.cur = m.w.st.chunk()
	}
	if cap(m.cur)-len(m.cur) < room {
		m.send() // and takes an empty buffer, unless this one is
	}
	return m.cur[len(m.cur):len(m.cur)]
}

// finish stops the compressor and returns its error.
func (m *memberFile) finish() error {
	if len(m.cur) > 0 {
		m.full <- m.cur
	} else if m.cur != nil {
		m.w.st.keepChunk(m.cur)
	}
	m.cur = nil
	close(m.full)
	err := <-m.zdone
	// The compressor has given back every buffer it was handed.
	for len(m.free) > 0 {
		m.w.st.keepChunk(<-m.free)
	}
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// discard drops a member that will not be completed.
func (m *memberFile) discard() {
	if m.done {
		return
	}
	m.done = true
	m.finish()
	os.Remove(m.path + ".part")
	st := m.w.st
	st.mu.Lock()
	delete(st.open, m.name)
	st.mu.Unlock()
}

func (m *memberFile) Close() error {
	if m.done {
		return m.err
	}
	if m.err != nil {
		m.discard()
		return m.err
	}
	err := m.finish()
	m.done = true
	st := m.w.st
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.open, m.name)
	if err == nil && st.closed {
		err = ErrClosed
	}
	if err == nil {
		err = os.Rename(m.path+".part", m.path)
	}
	if err != nil {
		os.Remove(m.path + ".part")
		m.err = fmt.Errorf("stage %s: %w", m.name, err)
		return m.err
	}
	st.members[m.name] = m.w.owner
	st.staged[m.name] = m.size
	return nil
}

// Note records something a reader should know about this view's collector
// even though it succeeded ("3 of 1078 sysctls unreadable"). The runner copies
// notes into the collector's manifest entry. A note already recorded for the
// same collector is not repeated: a sampler says the same thing at every
// sample.
func (w *Writer) Note(format string, args ...any) {
	st := w.st
	st.mu.Lock()
	defer st.mu.Unlock()
	note := fmt.Sprintf(format, args...)
	if slices.Contains(st.notes[w.owner], note) {
		return
	}
	st.notes[w.owner] = append(st.notes[w.owner], note)
}

// Notes returns the notes recorded by views owned by owner.
func (w *Writer) Notes(owner string) []string {
	st := w.st
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.notes[owner]...)
}

// Files lists the complete members written through views owned by owner, sorted.
func (w *Writer) Files(owner string) []string {
	st := w.st
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []string
	for name, o := range st.members {
		if o == owner {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Commit seals the Writer, writes the manifest and every complete member into
// dir/name in the bundle's member order, and renames it into place. The bundle
// file has mode 0600. Members still being written are left out. The staging
// folder is removed whatever the outcome. Commit returns the bundle's path.
func (w *Writer) Commit(name string, m *Manifest) (string, error) {
	st := w.st
	st.mu.Lock()
	if st.closed || st.staging == "" {
		st.mu.Unlock()
		return "", ErrClosed
	}
	st.closed = true
	names := make([]string, 0, len(st.members))
	for n := range st.members {
		names = append(names, n)
	}
	mem := st.mem
	staged := st.staged
	st.mu.Unlock()
	defer os.RemoveAll(st.staging)

	if m.Format == "" {
		m.Format = Format
	}
	if st.filter != nil {
		var err error
		if name, m, err = st.filter.Commit(name, m); err != nil {
			return "", err
		}
	}
	sortMembers(names)
	tmp, err := st.writeTemp(m, names, mem, staged)
	if isNoSpace(err) {
		// The disk filled while the archive was written. A bundle without
		// the large members (socket table, packets) is worth far more than
		// none: drop them, free their staged copies, say so in the manifest,
		// and try once more.
		keep, drop := splitLarge(names)
		if len(drop) > 0 {
			for _, name := range drop {
				os.Remove(filepath.Join(st.staging, "m", filepath.FromSlash(name)))
			}
			st.noteDropped(m, drop, err)
			tmp, err = st.writeTemp(m, keep, mem, staged)
		}
	}
	if err != nil {
		return "", err
	}
	st.mu.Lock()
	before := st.beforeCommit
	st.mu.Unlock()
	var hook func(string)
	if before != nil {
		hook = func(p string) { before(p, m) }
	}
	final, err := linkUnique(tmp, filepath.Join(st.dir, name), hook)
	os.Remove(tmp)
	if err != nil {
		return "", err
	}
	syncDir(st.dir)
	return final, nil
}

// writeTemp writes the complete archive of names under a temporary name in
// the target directory, synced and closed, and returns that name. On any
// error the temporary file is removed.
func (st *state) writeTemp(m *Manifest, names []string, mem map[string][]byte, staged map[string]int64) (_ string, err error) {
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode manifest: %w", err)
	}
	tmp, err := os.CreateTemp(st.dir, tempPrefix+"bundle-")
	if err != nil {
		return "", fmt.Errorf("create temporary bundle in %s: %w", st.dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return "", fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := st.writeArchive(tmp, manifest, m.End, names, mem, staged); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return "", err // it names the file already
		}
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	// A filesystem with delayed allocation reports a full disk only here.
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	return tmp.Name(), nil
}

// isNoSpace reports whether err is the filesystem running out of room: no
// space, the user's quota, or the file size limit.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG)
}

// splitLarge separates the large members (the socket table, the packets:
// the last ranks) from the rest.
func splitLarge(names []string) (keep, drop []string) {
	for _, n := range names {
		if isLarge(n) {
			drop = append(drop, n)
		} else {
			keep = append(keep, n)
		}
	}
	return keep, drop
}

// noteDropped records in m that the members drop were left out for lack of
// space: each owning collector is marked failed, with the reason, and the
// members leave its file list.
func (st *state) noteDropped(m *Manifest, drop []string, cause error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	reason := cause.Error()
	var errno syscall.Errno
	if errors.As(cause, &errno) {
		reason = errno.Error()
	}
	byOwner := map[string][]string{}
	for _, name := range drop {
		owner := st.members[name]
		byOwner[owner] = append(byOwner[owner], name)
	}
	for owner, names := range byOwner {
		msg := fmt.Sprintf("%s left out of the bundle: %s filled up while the bundle was written (%s)",
			strings.Join(names, ", "), st.dir, reason)
		c := m.Collector(owner)
		if c == nil {
			m.Collectors = append(m.Collectors, CollectorStatus{Name: owner, Status: StatusFailed, Error: msg})
			continue
		}
		c.Status = StatusFailed
		if c.Error != "" {
			msg = c.Error + "; " + msg
		}
		c.Error = msg
		c.Files = slices.DeleteFunc(c.Files, func(f string) bool { return slices.Contains(names, f) })
	}
}

// Abort drops everything staged. It is safe to call after Commit.
func (w *Writer) Abort() {
	st := w.st
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	if st.staging != "" {
		os.RemoveAll(st.staging)
	}
}

// isLarge reports whether name is one of the large members, the last ranks
// of a bundle: the only members a full disk may cost it.
func isLarge(name string) bool { return rank(name) >= rank(PathSocketsTCP) }

// sortMembers orders names by rank, then by name.
func sortMembers(names []string) {
	sort.Slice(names, func(i, j int) bool {
		ri, rj := rank(names[i]), rank(names[j])
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
}

// Encoder settings: one goroutine and a 256 KiB window keep each encoder's
// memory to about a MiB whatever the bundle's size. WithLowerEncoderMem is
// not used for the staged members (commitEncoder uses it for the small
// ones): its smaller history buffer is shifted so often that memmove took
// as much CPU as compressing (perf on a 50,000-socket table). The window is
// small because the rows repeat within a few hundred lines: on a recorded
// 50,000-socket table, 256 KiB compressed 3% smaller than 1 MiB and 13%
// faster (its 512 KiB history stays in cache and is 1.5 MiB fewer pages to
// fault in), and 4 MiB compressed no better.
func newEncoder(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w,
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(encoderWindow),
		zstd.WithEncoderLevel(zstd.SpeedFastest))
}

// writeArchive writes the tar.zst: a sequence of zstd frames whose
// decompressed concatenation is one tar stream, as zstd and tar --zstd read
// it. Small members are compressed here, in one frame with the manifest;
// each staged member is copied as the frame it was compressed into while it
// was collected, preceded by its tar header. The first frame therefore ends
// before the first large member, so a bundle cut short in the socket table or
// the pcap still decodes up to it (Limits.Partial).
func (st *state) writeArchive(out io.Writer, manifest []byte, mtime time.Time, names []string, mem map[string][]byte, staged map[string]int64) error {
	if mtime.IsZero() {
		mtime = time.Now()
	}
	staging := st.staging
	bw := bufio.NewWriterSize(out, 256<<10)
	zw, err := st.commitEncoder(bw)
	if err != nil {
		return err
	}
	var hdr []byte // one buffer for every member's header
	header := func(name string, size int64) error {
		var err error
		if hdr, err = appendTarHeader(hdr[:0], name, size, mtime); err != nil {
			return err
		}
		_, err = zw.Write(hdr)
		return err
	}
	put := func(name string, data []byte) error {
		if err := header(name, int64(len(data))); err != nil {
			return err
		}
		if _, err := zw.Write(data); err != nil {
			return err
		}
		_, err := zw.Write(zeroBlock[:(512-len(data)%512)%512])
		return err
	}
	if err := put(PathManifest, manifest); err != nil {
		return err
	}
	for _, name := range names {
		if data, ok := mem[name]; ok {
			if err := put(name, data); err != nil {
				return err
			}
			continue
		}
		size, ok := staged[name]
		if !ok {
			return fmt.Errorf("member %s: neither held nor staged", name)
		}
		if err := header(name, size); err != nil {
			return err
		}
		if err := zw.Close(); err != nil { // ends the frame
			return err
		}
		// Emptied, bw hands the copy to the archive file's ReadFrom,
		// which has the kernel copy the frame (copy_file_range) rather
		// than read it through bw's buffer: for a 50,000-socket table,
		// 60 fewer pages to fault in, and no copy through user space.
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := copyFrame(bw, filepath.Join(staging, "m", filepath.FromSlash(name))); err != nil {
			return err
		}
		zw.Reset(bw)
	}
	// The tar trailer: two zero blocks.
	if _, err := zw.Write(zeroBlock[:]); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// copyFrame appends a staged member's compressed frame to the archive.
func copyFrame(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("copy %s: %w", path, err)
	}
	return nil
}

// linkUnique gives the complete temporary archive its final name without ever
// replacing an existing bundle: two captures in the same second get -2, -3, ...
// before, when not nil, is called with each free name just before the link
// (Writer.SetBeforeCommit).
func linkUnique(tmp, final string, before func(path string)) (string, error) {
	base := strings.TrimSuffix(final, ".tar.zst")
	for i := 1; i <= 100; i++ {
		name := final
		if i > 1 {
			name = fmt.Sprintf("%s-%d.tar.zst", base, i)
		}
		if before != nil {
			if _, err := os.Lstat(name); err == nil {
				continue // taken: before must not touch its files
			}
			before(name)
		}
		err := os.Link(tmp, name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("link into %s: %w", name, err)
		}
	}
	return "", fmt.Errorf("link into %s: too many bundles with that name", final)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// CleanStale removes staging folders and temporary archives that a killed run
// left in dir, if they are older than age. It touches only names with the
// Writer's temporary prefix and returns how many it removed.
func CleanStale(dir string, age time.Duration) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < age {
			continue
		}
		if e.Type()&fs.ModeSymlink != 0 {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err == nil {
			n++
		}
	}
	return n, nil
}

// FileName is the bundle's file name for host at t:
// snapdiag-<hostname>-<UTC yyyymmddThhmmssZ>.tar.zst.
func FileName(host string, t time.Time) string {
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, host)
	if host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("snapdiag-%s-%s.tar.zst", host, t.UTC().Format("20060102T150405Z"))
}
