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
	var matches []byte // the listen-path lines, each ended by a newline
	nmatch := 0
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
		if nmatch < kmsgMatchLines && matchesAny(rec) {
			matches = append(append(matches, rec...), '\n')
			nmatch++
		}
	}
	k.info = bundle.KmsgInfo{Lines: tail.len(), Truncated: total > tail.len()}
	if err := w.WriteFile(bundle.PathKmsg, tail.bytes()); err != nil {
		return err
	}
	if nmatch > 0 {
		if err := w.WriteFile(bundle.PathKmsgNet, matches); err != nil {
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

// lineRing keeps the last lines added, within a line and a byte bound, in
// one buffer that is the member's bytes: each line followed by a newline.
// A kernel log has a thousand lines or more, and a slice for each, then a
// buffer grown to join them, cost the capture some 600 KiB of fresh pages
// for a 130 KiB log.
type lineRing struct {
	buf      []byte // the lines added, each ended by a newline; the kept ones from offs[first]
	offs     []int  // where each line starts in buf; the kept ones from first
	first    int
	maxLines int
	maxBytes int
}

// lineRingStart is the first buffer's size: most kernel logs fit it. Only
// the pages written are faulted in, so a log of 130 KiB costs as much in
// it as in a buffer of its size, and a smaller first buffer, moved to a
// larger one, cost it twice as many pages.
const lineRingStart = 256 << 10

func newLineRing(maxLines, maxBytes int) *lineRing {
	return &lineRing{maxLines: maxLines, maxBytes: maxBytes}
}

func (r *lineRing) add(line []byte) {
	if len(r.buf)+len(line)+1 > cap(r.buf) {
		// Compacted when that frees half the buffer, else moved to one
		// twice what it must hold: each new buffer is fresh pages to
		// fault in, and append's growth by a quarter made four of them
		// for a 130 KiB log.
		need := r.keptBytes() + len(line) + 1
		buf := r.buf[:0]
		if need > cap(r.buf)/2 {
			buf = make([]byte, 0, max(lineRingStart, 2*need))
		}
		r.moveTo(buf)
	}
	r.offs = append(r.offs, len(r.buf))
	r.buf = append(append(r.buf, line...), '\n')
	for r.len() > r.maxLines || len(r.buf)-r.offs[r.first] > r.maxBytes && r.len() > 1 {
		r.first++
	}
	if r.first >= 4*r.maxLines {
		r.moveTo(r.buf[:0]) // bounds offs when the lines are short
	}
}

// moveTo moves the kept lines to the start of buf, which may be r.buf.
func (r *lineRing) moveTo(buf []byte) {
	lo := len(r.buf) - r.keptBytes()
	r.buf = append(buf, r.buf[lo:]...) // copy handles the overlap of r.buf[:0]
	r.offs = r.offs[:copy(r.offs, r.offs[r.first:])]
	for i := range r.offs {
		r.offs[i] -= lo
	}
	r.first = 0
}

func (r *lineRing) len() int { return len(r.offs) - r.first }

// keptBytes is the size of the lines kept, newlines included.
func (r *lineRing) keptBytes() int {
	if r.len() == 0 {
		return 0
	}
	return len(r.buf) - r.offs[r.first]
}

// bytes returns the lines kept, each ended by a newline.
func (r *lineRing) bytes() []byte {
	return r.buf[len(r.buf)-r.keptBytes():]
}
