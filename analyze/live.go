package analyze

import (
	"bytes"
	"io/fs"
	"path"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// A live view (watch --metrics, top) reads the samples a watcher keeps in
// memory with the same parsers as a bundle's samples, so a counter means the
// same on a dashboard and in a report.

// LiveCounters are the host counters of the listen path a live view shows,
// in a stable order: overflows and drops of the accept and SYN queues, the
// SYN cookies, and TIME_WAIT overflow.
func LiveCounters() []Counter {
	return []Counter{
		tcpExtListenOverflows, tcpExtListenDrops, tcpExtTCPReqQFullDrop, tcpExtTCPReqQFullDoCookies,
		tcpExtSyncookiesSent, tcpExtSyncookiesRecv, tcpExtSyncookiesFailed, tcpExtTCPTimeWaitOverflow,
	}
}

// ListenSysctls are the sysctls of the listen path a live view shows, by
// their dotted names: each is a single integer.
func ListenSysctls() []string {
	return []string{
		"net.core.somaxconn",
		"net.ipv4.tcp_max_syn_backlog",
		"net.ipv4.tcp_syncookies",
		"net.ipv4.tcp_synack_retries",
		"net.ipv4.tcp_abort_on_overflow",
		"net.ipv4.tcp_max_tw_buckets",
	}
}

// ParseKernelRelease reads a kernel release such as "6.18.44-fc-v657" (the
// manifest's host.kernel_release, uname -r) into a KernelVersion.
func ParseKernelRelease(release string) (KernelVersion, error) {
	return parseKernelRelease(release)
}

// SynQueueLimit is the effective SYN-queue limit of a listener with backlog
// sendQ (its Send-Q) on kernel k with sysctls sys: SynQueueCap with
// tcp_max_syn_backlog and tcp_syncookies as sys has them (cookies on when
// sys lacks the value, the kernel's default).
func SynQueueLimit(k KernelVersion, sys Sysctls, sendQ uint32) int {
	s := Snapshot{Kernel: k, Sysctls: sys}
	n, _ := s.synQueueCap(&ListenerState{Listener: bundle.Listener{SendQ: sendQ}})
	return n
}

// ParseSample parses one sample held in memory, its files keyed by their
// name inside the sample folder (bundle.SampleNetstat, ...), as
// collectors.HistorySample holds them. Files that could not be parsed are
// in the gaps; what the others hold is kept.
func ParseSample(files map[string][]byte) (Sample, []Gap) {
	var s Snapshot
	fsys := make(memFS, len(files))
	for name, data := range files {
		fsys[bundle.SampleFile(0, name)] = data
	}
	return loadSample(&s, fsys, 0, 0), s.Gaps
}

// memFS is a read-only fs.FS of whole files in memory, keyed by path: just
// what loadSample opens and reads.
type memFS map[string][]byte

func (m memFS) Open(name string) (fs.File, error) {
	b, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{Reader: bytes.NewReader(b), name: path.Base(name), size: int64(len(b))}, nil
}

type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f, nil }
func (f *memFile) Close() error               { return nil }
func (f *memFile) Name() string               { return f.name }
func (f *memFile) Size() int64                { return f.size }
func (f *memFile) Mode() fs.FileMode          { return 0o444 }
func (f *memFile) ModTime() time.Time         { return time.Time{} }
func (f *memFile) IsDir() bool                { return false }
func (f *memFile) Sys() any                   { return nil }
