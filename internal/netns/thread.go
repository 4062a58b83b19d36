// Package netns enters Linux network namespaces without moving the rest of
// the process, and names them: resolving --netns, --pid and --container to a
// namespace file, and finding the container and pod that own a namespace.
//
// setns(2) moves only the calling thread. A goroutine can run on any thread
// and a thread serves many goroutines, so the namespace is entered on a
// thread of its own (a Thread) that runs nothing but the functions given to
// it, and that is never handed back to the Go scheduler: when the Thread is
// closed its goroutine returns still locked, and the runtime ends the thread
// instead of reusing it. Sockets keep the namespace they were created in, so
// a netlink or packet socket opened on a Thread serves from any goroutine.
package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Thread.Do after Close.
var ErrClosed = errors.New("network namespace thread closed")

// Thread is an OS thread in a network namespace, running the functions given
// to Do one at a time. Its zero value is not usable; Enter makes one.
type Thread struct {
	path string
	tid  int
	ino  uint64

	mu     sync.Mutex // guards closed against Do sending on reqs
	closed bool
	reqs   chan func()
	done   chan struct{}
}

// Enter starts a thread in the network namespace of the namespace file at
// path (/proc/PID/ns/net, /run/netns/NAME, a bind mount). It needs
// CAP_SYS_ADMIN (in the namespace's owning user namespace) and the right to
// open path.
func Enter(path string) (*Thread, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	t := &Thread{path: path, reqs: make(chan func()), done: make(chan struct{})}
	ready := make(chan error, 1)
	goLocked(func() { t.serve(fd, ready) })
	if err := <-ready; err != nil {
		<-t.done
		return nil, err
	}
	return t, nil
}

// goLocked runs f on a goroutine of its own, locked to its OS thread and
// never unlocked: returning locked makes the runtime end the thread, so a
// thread f moved to another namespace never goes back to the pool that runs
// other goroutines.
//
// That thread is never the process's main thread: the runtime never ends
// that one (a goroutine that exits locked to it leaves it parked for good),
// and /proc/self/net, which /proc/net links to, shows the main thread's
// namespace, so while f is in another namespace the whole process's
// /proc/net would be that namespace's. A goroutine started from the main
// thread often runs on it. On the main thread, goLocked starts f on another
// goroutine while it holds the main thread, which that goroutine therefore
// cannot get, and lets go of the main thread only once the other has locked
// its own.
func goLocked(f func()) {
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			locked := make(chan struct{})
			go func() {
				runtime.LockOSThread()
				close(locked)
				f()
			}()
			<-locked
			runtime.UnlockOSThread()
			return
		}
		f()
	}()
}

// serve enters the namespace on the calling goroutine's thread, locked by
// goLocked, and runs the functions given to Do until Close.
func (t *Thread) serve(fd int, ready chan<- error) {
	defer close(t.done)
	err := unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err != nil {
		ready <- fmt.Errorf("enter network namespace %s: %w", t.path, err)
		return
	}
	t.tid = unix.Gettid()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err == nil {
		t.ino = st.Ino
	}
	ready <- nil
	for f := range t.reqs {
		f()
	}
}

// Do runs f on the thread, inside the namespace, and returns when f has.
// Calls from several goroutines run one after another; a panic in f is
// raised again in the caller. f must not call runtime.UnlockOSThread, nor
// start goroutines that expect to be in the namespace (they are not).
func (t *Thread) Do(f func()) error {
	ran := make(chan struct{})
	var (
		panicked bool
		value    any
	)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.reqs <- func() {
		defer close(ran)
		// A panic in f is the caller's, raised again below: the
		// collectors recover theirs, and nothing would recover it on the
		// thread's goroutine, ending the whole process.
		defer func() {
			if p := recover(); p != nil {
				panicked, value = true, p
			}
		}()
		f()
	}
	t.mu.Unlock()
	<-ran
	if panicked {
		panic(value)
	}
	return nil
}

// Close ends the thread once the function it runs, if any, returns. It is
// safe to call more than once.
func (t *Thread) Close() {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.reqs)
	}
	t.mu.Unlock()
	<-t.done
}

// TID is the thread's id.
func (t *Thread) TID() int { return t.tid }

// Inode is the inode number of the namespace the thread is in.
func (t *Thread) Inode() uint64 { return t.ino }

// ProcNet is the thread's /proc/net under the proc root given ("/proc"): the
// namespace's /proc/net files, readable from any thread for as long as the
// Thread is open, whatever becomes of the processes in the namespace.
func (t *Thread) ProcNet(proc string) string {
	return proc + "/" + strconv.Itoa(os.Getpid()) + "/task/" + strconv.Itoa(t.tid) + "/net"
}

// Socket opens a socket inside the namespace. The socket stays in it
// wherever it is used from.
func (t *Thread) Socket(domain, typ, proto int) (int, error) {
	fd, serr := -1, error(nil)
	if err := t.Do(func() { fd, serr = unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto) }); err != nil {
		return -1, err
	}
	if serr != nil {
		return -1, fmt.Errorf("socket in network namespace %s: %w", t.path, serr)
	}
	return fd, nil
}
