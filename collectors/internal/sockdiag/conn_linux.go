package sockdiag

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is a sock_diag netlink socket kept open for many dumps. A socket
// answers for the network namespace it was created in, wherever it is used
// from, so a Conn opened on a thread inside another namespace (OpenConn
// there) dumps that namespace's sockets from any goroutine. Dumps on one
// Conn run one at a time.
type Conn struct {
	mu  sync.Mutex
	f   *os.File
	seq uint32
	// broken is set when a dump was cut before its end: the kernel may
	// still hold the rest of it, and refuses a new dump on the socket
	// (EBUSY) until it is read.
	broken bool
}

// OpenConn opens and binds a sock_diag netlink socket in the calling
// thread's network namespace.
func OpenConn() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind sock_diag netlink socket: %w", err)
	}
	// Wrapped in an os.File, the non-blocking socket is registered with the
	// runtime's poller, so a read deadline interrupts a receive.
	return &Conn{f: os.NewFile(uintptr(fd), "sock_diag")}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.f.Close() }

// errBroken is returned by a dump on a Conn whose earlier dump was cut.
var errBroken = errors.New("sock_diag socket unusable: an earlier dump on it was cut short")

// nextSeq numbers the next request on c; a nil Conn (a socket per dump)
// numbers every request dumpSeq.
func (c *Conn) nextSeq() uint32 {
	if c == nil {
		return dumpSeq
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	return c.seq
}

// exchange is the package's exchange on c, one dump at a time. Each
// request has its own sequence number, so replies to an earlier request
// are skipped rather than taken for this one's.
func (c *Conn) exchange(ctx context.Context, req []byte, fn func(datagram []byte) (done bool, err error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken {
		return errBroken
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sent.Add(1)
	// The last exchange left a read deadline in the past to wake its
	// receiver; one without a deadline of its own must clear it.
	if err := c.f.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("set sock_diag read deadline: %w", err)
	}
	err := exchange(ctx, c.f, req, fn)
	// A refused request (NLMSG_ERROR) started no dump: the socket is
	// free for the next request, such as Dumper's per-family fallback.
	if err != nil && !refused(err) {
		c.broken = true
	}
	return err
}
