// Package collectors reads the live kernel's evidence into a bundle: one
// Collector per source, Samplers for what is read at every counter sample, and
// a Runner that enforces the capture's deadline and records each collector's
// outcome in the manifest.
package collectors

import (
	"context"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/netns"
)

// Host says where the live system's files are, and which network namespace
// to read. Tests point it at a copy; captures use the defaults.
type Host struct {
	Proc string // "/proc"
	Sys  string // "/sys"
	Dev  string // "/dev", for /dev/kmsg

	// NS is the network namespace to read, entered on a thread of its own;
	// nil reads the namespace the capturing process runs in. Everything
	// per namespace comes from it: /proc/net (through the thread's
	// /proc/PID/task/TID/net), the net.* sysctls, the sock_diag and packet
	// sockets. The kernel log, the system files, the fs.* sysctls and the
	// listeners' processes (socket inodes are the same in every
	// namespace) are the host's. The caller owns the Thread and closes it.
	NS *netns.Thread
	// NSProc, set with NS nil, is the /proc/PID of a process in a namespace
	// to read that this process could not enter, and NSErr says why
	// (setns(2) needs CAP_SYS_ADMIN): /proc/net is read through NSProc/net,
	// which needs only the right to read that process's /proc, and what
	// only a thread inside the namespace can read (the net.* sysctls, the
	// socket table and listeners, the packet sample) fails with NSErr.
	// NSErr set with NS nil and NSProc empty is a namespace named by its
	// file alone that could not be entered: everything per namespace fails
	// with NSErr, and the bundle holds only what is the host's.
	NSProc string
	NSErr  error

	// Ports are the service ports to focus on (--port).
	Ports []int
	// SocketCap bounds the rows of sockets/tcp.jsonl; the summary is never capped.
	SocketCap int
	// PacketWindow is how long the packet sample runs; 0 disables it.
	PacketWindow time.Duration
	// PacketLimit and PacketBytes bound the packet sample.
	PacketLimit int
	PacketBytes int64
	// Payload keeps whole packets instead of headers only.
	Payload bool

	// Shared is what the collectors of one capture share. Capture sets a
	// fresh one on its copy of the Host when it is nil; a collector run
	// outside a capture, with none, reads the kernel on its own.
	Shared *Shared
}

// Collector gathers one source once per capture.
type Collector interface {
	// Name is the collector's stable name in the manifest.
	Name() string
	// Collect writes the source's members through w. It returns an error that
	// wraps fs.ErrNotExist when the source does not exist on this kernel
	// (recorded as absent), and returns promptly when ctx is done.
	Collect(ctx context.Context, h Host, w *bundle.Writer) error
}

// Sampler gathers one source at every counter sample, into samples/NNN/.
type Sampler interface {
	Name() string
	// Sample writes sample i's members (bundle.SampleFile(i, ...)) through w.
	Sample(ctx context.Context, h Host, i int, w *bundle.Writer) error
}
