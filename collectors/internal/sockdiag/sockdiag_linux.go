package sockdiag

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// recvBufSize is the receive buffer. netlink_recvmsg() caps the size it
// learns from readers at SKB_WITH_OVERHEAD(32768), and netlink_dump()
// allocates dump skbs of that size, so one datagram never needs more than
// 32 KiB; 64 KiB leaves room and a truncated datagram is still detected.
const recvBufSize = 64 << 10

// dumpSeq is the sequence number of the one request each socket sends.
const dumpSeq = 1

// Dump asks the kernel for every TCP socket of family (FamilyInet or
// FamilyInet6) whose state is in the states mask (StatesListen,
// StatesSynRecv, StatesAll, or any 1<<State combination), with the
// attributes selected by ext (0, or ExtInfo for struct tcp_info), and calls fn
// for each socket as it arrives, so memory stays bounded whatever the number
// of sockets. fn must not keep m: it is reused for the next socket.
//
// Dump returns fn's error as it is, ctx's error when ctx ends the dump, and
// an error wrapping fs.ErrNotExist when the kernel has no sock_diag for TCP.
func Dump(ctx context.Context, family uint8, states uint32, ext uint8, fn func(m *Msg) error) error {
	return dumpFamily(ctx, nil, unix.Socket, family, states, ext, fn)
}

// dumpFamily is Dump on the socket c, or, when c is nil, on a socket of its
// own opened by open.
func dumpFamily(ctx context.Context, c *Conn, open Opener, family uint8, states uint32, ext uint8, fn func(m *Msg) error) error {
	seq := c.nextSeq()
	req := appendRequest(make([]byte, 0, sizeofNlMsghdr+sizeofDiagReqV2), seq, family, states, ext)
	return dumpMsgs(ctx, c, open, seq, req, fn)
}

// dumpMsgs sends the dump request req, numbered seq, on c (on a socket of
// its own opened by open when c is nil) and calls fn with every socket of
// the reply.
func dumpMsgs(ctx context.Context, c *Conn, open Opener, seq uint32, req []byte, fn func(m *Msg) error) error {
	var m Msg
	parse := func(datagram []byte) (bool, error) {
		return parseDatagram(datagram, seq, func(payload []byte) error {
			if err := DecodeMsg(payload, &m); err != nil {
				return fmt.Errorf("decode sock_diag reply: %w", err)
			}
			return fn(&m)
		})
	}
	if c != nil {
		return c.exchange(ctx, req, parse)
	}
	return dumpReq(ctx, open, req, parse)
}

// Opener opens a socket, as unix.Socket does. A sock_diag socket answers
// about the sockets of the network namespace it was created in
// (sock_diag_rcv_msg() looks up sock_net() of the netlink socket), so the
// opener decides whose sockets a dump lists.
type Opener func(domain, typ, proto int) (int, error)

// Dumper dumps the TCP sockets of both families and counts the dump requests
// it sends to the kernel, so a capture can show (and a test can check) how
// many walks of the kernel's socket tables it cost. The zero Dumper is ready;
// a nil *Dumper dumps without counting. It is safe for concurrent use.
type Dumper struct {
	// Open opens the netlink socket of every dump; nil opens it in the
	// calling thread's namespace. Set it before the first dump.
	Open Opener

	requests atomic.Int64
	// walks counts the requests that asked for a state other than LISTEN.
	walks atomic.Int64
	// perFamily is set once the kernel refused a request for both families
	// at once: later dumps ask for each family on its own.
	perFamily atomic.Bool
}

// Requests returns how many dump requests d has sent.
func (d *Dumper) Requests() int64 {
	if d == nil {
		return 0
	}
	return d.requests.Load()
}

// Walks returns how many of d's requests walked the kernel's established
// hash: every request that asks for any state but LISTEN does, over all of
// its buckets, locking each that holds a socket of any namespace
// (inet_diag_dump_icsk() skips the hash only for a LISTEN-only request),
// so on a host with many sockets each costs milliseconds even for a
// namespace with none.
func (d *Dumper) Walks() int64 {
	if d == nil {
		return 0
	}
	return d.walks.Load()
}

// Dump is the package's Dump for both families, FamilyInet and FamilyInet6,
// in one request and so one walk of the kernel's socket hash tables when the
// kernel takes it (TCPDIAG_GETSOCK with AF_UNSPEC), else one request per
// family. The sockets of the two families may arrive interleaved.
func (d *Dumper) Dump(ctx context.Context, states uint32, ext uint8, fn func(m *Msg) error) error {
	return d.DumpOn(ctx, nil, states, ext, fn)
}

// DumpOn is Dump on the netlink socket c, which may have been opened in
// another network namespace (OpenConn on a thread there); c nil is Dump.
func (d *Dumper) DumpOn(ctx context.Context, c *Conn, states uint32, ext uint8, fn func(m *Msg) error) error {
	open := Opener(unix.Socket)
	if d != nil && d.Open != nil {
		open = d.Open
	}
	if d == nil || !d.perFamily.Load() {
		d.count()
		seq := c.nextSeq()
		req := appendRequestBothFamilies(make([]byte, 0, sizeofNlMsghdr+sizeofDiagReqCompat), seq, states, ext)
		delivered := false
		err := dumpMsgs(ctx, c, open, seq, req, func(m *Msg) error {
			delivered = true
			return fn(m)
		})
		// A kernel without the compat interface refuses the request before
		// it sends a single socket; any other error is the dump's own.
		if err == nil || delivered || !refused(err) {
			d.walked(states) // a refused request walked nothing
			return err
		}
		if d != nil {
			d.perFamily.Store(true)
		}
	}
	for _, family := range []uint8{FamilyInet, FamilyInet6} {
		d.count()
		err := dumpFamily(ctx, c, open, family, states, ext, fn)
		d.walked(states)
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Dumper) count() {
	if d != nil {
		d.requests.Add(1)
	}
}

// walked counts a request the kernel took that asked for states.
func (d *Dumper) walked(states uint32) {
	if d != nil && states&^StatesListen != 0 {
		d.walks.Add(1)
	}
}

// refused reports whether err is the kernel refusing a request type or
// family it does not handle.
func refused(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EPROTONOSUPPORT)
}

// dumpRaw sends one SOCK_DIAG_BY_FAMILY dump request and calls fn with every
// datagram received, until fn reports the dump done or fails. It is apart
// from Dump so tests can record the kernel's bytes.
func dumpRaw(ctx context.Context, family uint8, states uint32, ext uint8, fn func(datagram []byte) (done bool, err error)) error {
	return dumpReq(ctx, unix.Socket, appendRequest(make([]byte, 0, sizeofNlMsghdr+sizeofDiagReqV2), dumpSeq, family, states, ext), fn)
}

// sent counts the dump requests this process sent, whoever sent them.
var sent atomic.Int64

// Sent returns how many dump requests this process has sent, through a
// Dumper or not: tests compare it before and after to count a capture's.
func Sent() int64 { return sent.Load() }

// dumpReq sends the dump request req and calls fn with every datagram
// received, until fn reports the dump done or fails. open opens the netlink
// socket.
func dumpReq(ctx context.Context, open Opener, req []byte, fn func(datagram []byte) (done bool, err error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sent.Add(1)
	// A non-blocking socket wrapped in an os.File is registered with the
	// runtime's poller, so a read deadline, set from ctx, interrupts a
	// receive that waits on the kernel.
	fd, err := open(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EAFNOSUPPORT) {
			return fmt.Errorf("open sock_diag netlink socket: %w: %w", fs.ErrNotExist, err)
		}
		return fmt.Errorf("open sock_diag netlink socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "sock_diag")
	defer f.Close()
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind sock_diag netlink socket: %w", err)
	}
	return exchange(ctx, f, req, fn)
}

// exchange sends the dump request req on the bound netlink socket f and
// calls fn with every datagram received, until fn reports the dump done or
// fails. It leaves f open.
func exchange(ctx context.Context, f *os.File, req []byte, fn func(datagram []byte) (done bool, err error)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("sock_diag netlink socket: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := f.SetReadDeadline(dl); err != nil {
			return fmt.Errorf("set sock_diag read deadline: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, func() {
		f.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()

	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("send sock_diag request: %w", err)
	}

	// The kernel fills the next datagram inside recvmsg() (netlink_recvmsg()
	// calls netlink_dump() once the reader has made room), so receiving in
	// a goroutine of its own lets the kernel fill one datagram while fn
	// works through the one before: on a machine with two CPUs the dump
	// takes about the longer of the two, not their sum. At most
	// recvBuffers buffers cycle between the two goroutines, so memory
	// stays bounded; the receiver takes a new one only when none is free,
	// so a small dump uses a few. They come from a pool: capture
	// --all-netns dumps hundreds of small namespaces per sample, and fresh
	// buffers for each cost more than the dump.
	free := make(chan []byte, recvBuffers)
	filled := make(chan datagram, recvBuffers)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(filled)
		made := 0
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-quit:
				return
			default:
				if made < recvBuffers {
					made++
					buf = recvPool.Get().(*[recvBufSize]byte)[:]
					break
				}
				if testHookRecvWait != nil {
					testHookRecvWait(made)
				}
				select {
				case buf = <-free:
				case <-quit:
					return
				}
			}
			n, err := recvDatagram(rc, buf)
			select {
			case filled <- datagram{buf: buf, n: n, err: err}:
			case <-quit:
				recvPool.Put((*[recvBufSize]byte)(buf))
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		// After NLMSG_DONE the receiver waits for a datagram that never
		// comes: a deadline in the past wakes it.
		close(quit)
		f.SetReadDeadline(time.Unix(1, 0))
		wg.Wait()
		// The receiver has closed filled; fn is done with every buffer.
		for d := range filled {
			recvPool.Put((*[recvBufSize]byte)(d.buf))
		}
		for len(free) > 0 {
			recvPool.Put((*[recvBufSize]byte)(<-free))
		}
	}()

	for d := range filled {
		if err := d.err; err != nil {
			free <- d.buf // back to the pool with the others
			if cerr := ctx.Err(); cerr != nil {
				return fmt.Errorf("receive sock_diag dump: %w", cerr)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("receive sock_diag dump: %w", context.DeadlineExceeded)
			}
			return fmt.Errorf("receive sock_diag dump: %w", err)
		}
		done, err := fn(d.buf[:d.n])
		free <- d.buf
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("receive sock_diag dump: %w", err)
		}
	}
	return errors.New("receive sock_diag dump: receiver stopped")
}

// recvBuffers is how many receive buffers may cycle between the receiving
// goroutine and the decoding one: a dump holds at most 16 of 64 KiB (a MiB,
// of which the kernel's datagrams fill half), and only as many as the
// decoder falls behind by. The three stages of a socket table's capture
// (the kernel filling datagrams in the receiver's recvfrom(), decoding and
// encoding the rows, compressing them: about 60, 50 and 40 ms of CPU for
// 50,000 sockets) share two CPUs; with 4 buffers a stage that fell behind
// for a moment stopped the one before it. Raised together with the
// bundle's stageBuffers, 16 made a capture of 50,000 sockets 0.84x and
// 0.88x as long in two alternations of 21 captures by hand; in five
// bench/capture.sh runs against the 4-buffer build (ee36186) the medians
// of the per-round ratios were 0.84x to 0.93x, the ratios of the medians
// 0.81x to 1.02x (bench/results/capture-20261206T1*.json): a gain of
// about a tenth on this 2-CPU machine, for a MiB.
const recvBuffers = 16

// testHookRecvWait, when set, is called with the number of buffers made
// each time the receiver has made all it may and waits for one back.
var testHookRecvWait func(made int)

// recvPool holds receive buffers of recvBufSize bytes between dumps.
var recvPool = sync.Pool{New: func() any { return new([recvBufSize]byte) }}

// datagram is one received netlink datagram, or the error that ended
// receiving.
type datagram struct {
	buf []byte
	n   int
	err error
}

// recvDatagram receives one datagram from the kernel into buf.
func recvDatagram(rc syscall.RawConn, buf []byte) (int, error) {
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			// MSG_TRUNC makes recvfrom() return the datagram's real length,
			// so a datagram larger than buf is an error, not silent loss.
			n, from, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_TRUNC)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return 0, err
		case n > len(buf):
			return 0, fmt.Errorf("datagram of %d bytes exceeds the %d byte buffer", n, len(buf))
		}
		// Only the kernel (port id 0) answers; anything else sent to our
		// port is not part of the dump.
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue
		}
		return n, nil
	}
}
