package collectors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/sys/unix"
)

// Kmsg bounds: the tail kept, and the lines that matter to the listen path
// kept from anywhere in the ring buffer.
const (
	kmsgTailLines  = 2000
	kmsgTailBytes  = 1 << 20
	kmsgMatchLines = 500
	kmsgMaxRecords = 1 << 20 // ring buffers hold far fewer; a bound all the same
)

// kmsgPatterns are the kernel messages the rules read. The SYN-flood line is
// printed once per listener's lifetime (queue->synflood_warned), so it may lie
// far before the tail: these lines are kept from the whole ring buffer.
var kmsgPatterns = [][]byte{
	[]byte("Possible SYN flooding"),
	[]byte("table full, dropping packet"),
	[]byte("neighbor table overflow"),
	[]byte("too many orphaned sockets"),
	[]byte("consider tuning tcp_mem"),
	[]byte("file-max limit"),
	[]byte("time wait bucket table overflow"),
	[]byte("TCP: out of memory"),
}

// Kmsg reads the kernel log from /dev/kmsg without blocking: the last lines,
// and the listen-path lines from the whole buffer, as raw records
// ("prio,seq,usec,flags;message").
type Kmsg struct {
	info bundle.KmsgInfo
}

// Name implements Collector.
func (*Kmsg) Name() string { return "kmsg" }

// Annotate implements Annotator.
func (k *Kmsg) Annotate(m *bundle.Manifest) { info := k.info; m.Kmsg = &info }

// Collect implements Collector.
func (k *Kmsg) Collect(ctx context.Context, h Host, w *bundle.Writer) error {
	path := filepath.Join(h.Dev, "kmsg")
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		// err is an *fs.PathError: it already names the path.
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("%w (kernel.dmesg_restrict: run as root or grant CAP_SYSLOG)", err)
		}
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	tail := newLineRing(kmsgTailLines, kmsgTailBytes)
	var matches [][]byte
	buf := make([]byte, 8192)
	total := 0
	for n := 0; n < kmsgMaxRecords; n++ {
		if n%256 == 0 && ctx.Err() != nil {
			break
		}
		// Each read returns one record. EPIPE means the record we were about
		// to read was overwritten; the next read continues with the oldest
		// one still there.
		m, err := unix.Read(fd, buf)
		if err == unix.EPIPE || err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN || m <= 0 {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		rec := buf[:m]
		// Continuation lines (" SUBSYSTEM=...") carry metadata, not the message.
		if i := bytes.IndexByte(rec, '\n'); i >= 0 {
			rec = rec[:i]
		}
		total++
		tail.add(rec)
		if len(matches) < kmsgMatchLines && matchesAny(rec) {
			matches = append(matches, append([]byte(nil), rec...))
		}
	}
	k.info = bundle.KmsgInfo{Lines: tail.len(), Truncated: total > tail.len()}
	if err := w.WriteFile(bundle.PathKmsg, tail.bytes()); err != nil {
		return err
	}
	if len(matches) > 0 {
		if err := w.WriteFile(bundle.PathKmsgNet, append(bytes.Join(matches, []byte("\n")), '\n')); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func matchesAny(rec []byte) bool {
	for _, p := range kmsgPatterns {
		if bytes.Contains(rec, p) {
			return true
		}
	}
	return false
}

// lineRing keeps the last lines added, within a line and a byte bound.
type lineRing struct {
	lines    [][]byte
	start    int
	size     int
	maxLines int
	maxBytes int
}

func newLineRing(maxLines, maxBytes int) *lineRing {
	return &lineRing{maxLines: maxLines, maxBytes: maxBytes}
}

func (r *lineRing) add(line []byte) {
	line = append([]byte(nil), line...)
	r.lines = append(r.lines, line)
	r.size += len(line) + 1
	for len(r.lines)-r.start > r.maxLines || r.size > r.maxBytes && len(r.lines)-r.start > 1 {
		r.size -= len(r.lines[r.start]) + 1
		r.lines[r.start] = nil
		r.start++
	}
	if r.start > 4*r.maxLines {
		r.lines = append([][]byte(nil), r.lines[r.start:]...)
		r.start = 0
	}
}

func (r *lineRing) len() int { return len(r.lines) - r.start }

func (r *lineRing) bytes() []byte {
	var b bytes.Buffer
	for _, l := range r.lines[r.start:] {
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
