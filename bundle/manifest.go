package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Status is how a collector ended.
type Status string

// Collector statuses. Absent is not failed: a source the kernel does not have
// (no conntrack module, no IPv6) is absent.
const (
	StatusOK      Status = "ok"
	StatusAbsent  Status = "absent"
	StatusFailed  Status = "failed"
	StatusTimeout Status = "timeout"
)

// Values of Manifest.StoppedBy.
const (
	StoppedByDeadline = "deadline"
	StoppedBySignal   = "signal"
)

// Manifest describes a bundle: what was captured, where, when, why, and what
// could not be captured. It is the first member of every bundle.
type Manifest struct {
	Format     string            `json:"format"`
	Tool       Tool              `json:"tool"`
	Host       Host              `json:"host"`
	Trigger    Trigger           `json:"trigger"`
	Start      time.Time         `json:"start"`
	End        time.Time         `json:"end"`
	Options    Options           `json:"options"`
	Collectors []CollectorStatus `json:"collectors"`

	// DeadlineHit is true when the capture's deadline cut at least one collector.
	DeadlineHit bool `json:"deadline_hit"`
	// StoppedBy says what ended the capture before it ran its course:
	// StoppedByDeadline or StoppedBySignal; empty when nothing did (and in
	// bundles older than the field, where DeadlineHit alone tells).
	StoppedBy string `json:"stopped_by,omitempty"`
	// Signal names the signal that stopped the capture ("SIGTERM") when
	// StoppedBy is StoppedBySignal.
	Signal string `json:"signal,omitempty"`

	Sockets *SocketsInfo `json:"sockets,omitempty"`
	Packets *PacketsInfo `json:"packets,omitempty"`
	Kmsg    *KmsgInfo    `json:"kmsg,omitempty"`
	Sysctls *SysctlsInfo `json:"sysctls,omitempty"`
	// Redaction is set when addresses and host names were replaced by keyed
	// pseudonyms (snapdiag redact, capture --redact).
	Redaction *Redaction `json:"redaction,omitempty"`
	// Cost is what the capture itself cost the host; nil in bundles written
	// before it was recorded.
	Cost *Cost `json:"cost,omitempty"`
	// NetNS is the network namespace the capture read and who owns it; nil
	// in bundles written before it was recorded, which read the namespace
	// the capture ran in (Host.NetNSInode).
	NetNS *NetNS `json:"netns,omitempty"`
	// Namespaces lists the other network namespaces of a whole-node bundle
	// (capture --all-netns), each in its folder under netns/; nil otherwise.
	Namespaces *NamespacesInfo `json:"namespaces,omitempty"`
}

// Cost is the capture's own use of the host, from its start until the
// manifest was encoded: collecting, and staging and compressing the large
// members, but not the last step (writing the archive, fsync, rename), which
// happens after the manifest is sealed into it.
type Cost struct {
	// WallMS is the time from Start to End.
	WallMS float64 `json:"wall_ms"`
	// CPUUserMS and CPUSystemMS are the process's CPU time over that span
	// (getrusage(RUSAGE_SELF), all threads). A capture starts no child
	// process. In a watchdog the span also holds the watchdog's own checks.
	CPUUserMS   float64 `json:"cpu_user_ms"`
	CPUSystemMS float64 `json:"cpu_system_ms"`
	// PeakRSSKiB is the process's peak resident memory, VmHWM of
	// /proc/self/status, in KiB.
	PeakRSSKiB int64 `json:"peak_rss_kib"`
	// PeakRSSScope says since when PeakRSSKiB is the peak: PeakSinceCapture
	// when the mark was reset at the capture's start (so a watchdog's peak
	// before the capture is not in it), PeakSinceProcess otherwise.
	PeakRSSScope string `json:"peak_rss_scope,omitempty"`
	// Priority is the scheduling priority the capture ran at.
	Priority *Priority `json:"priority,omitempty"`
}

// Summary says in a few words what the capture cost: "capture took 0.31 s
// CPU, 15.3 MiB peak, at nice 10".
func (c *Cost) Summary() string {
	s := fmt.Sprintf("capture took %.2f s CPU, %.1f MiB peak", (c.CPUUserMS+c.CPUSystemMS)/1000, float64(c.PeakRSSKiB)/1024)
	if p := c.Priority; p != nil {
		s += fmt.Sprintf(", at nice %d", p.Nice)
	}
	return s
}

// Scopes of Cost.PeakRSSKiB.
const (
	PeakSinceCapture = "capture"
	PeakSinceProcess = "process"
)

// Priority is the CPU and disk scheduling priority a capture ran at.
type Priority struct {
	// Nice is the nice value of the capture's threads, -20 to 19.
	Nice int `json:"nice"`
	// IOClass is the disk scheduling class: IOClassBestEffort, IOClassIdle,
	// IOClassRealtime, or IOClassNone (the default, best-effort at a level
	// derived from the nice value).
	IOClass string `json:"io_class"`
	// IOLevel is the level within the class, 0 (first) to 7 (last).
	IOLevel int `json:"io_level"`
	// Lowered is true when snapdiag lowered its own priority to these
	// values (capture's default, --priority low); false when it ran at the
	// priority it was started with.
	Lowered bool `json:"lowered"`
	// RestoredForWrite is true when a lowered capture went back to the
	// priority it was started with once collecting ended, so that writing
	// the bundle meets the deadline on a busy host.
	RestoredForWrite bool `json:"restored_for_write,omitempty"`
	// Error says why lowering or restoring failed, in part or whole.
	Error string `json:"error,omitempty"`
}

// Disk scheduling classes of Priority.IOClass (IOPRIO_CLASS_* of ioprio_set(2)).
const (
	IOClassNone       = "none"
	IOClassRealtime   = "realtime"
	IOClassBestEffort = "best-effort"
	IOClassIdle       = "idle"
)

// Redaction says how a bundle was redacted. The key itself stays with the
// operator; its fingerprint tells whether two bundles share pseudonyms.
type Redaction struct {
	Scheme         string `json:"scheme"`
	KeyFingerprint string `json:"key_fingerprint"`
}

// Tool names the snapdiag build that wrote the bundle.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
}

// Host holds the facts about the machine and the capturing process that a
// reader needs to interpret the rest: the kernel release decides which rules
// apply, the netns inode says whose counters these are.
type Host struct {
	Hostname      string `json:"hostname"`
	KernelRelease string `json:"kernel_release"`
	KernelVersion string `json:"kernel_version,omitempty"`
	Machine       string `json:"machine,omitempty"`
	BootID        string `json:"boot_id,omitempty"`
	// NetNSInode is the inode of the network namespace the capture ran in
	// (the target of /proc/self/ns/net). Counters and sysctls are per netns.
	NetNSInode uint64 `json:"netns_inode,omitempty"`
	EUID       int    `json:"euid"`
	// CapEff is the effective capability set, as the hex mask of /proc/self/status.
	CapEff string `json:"cap_eff,omitempty"`
	// Capabilities names the effective capabilities that matter to a capture.
	Capabilities []string `json:"capabilities,omitempty"`
}

// Trigger says why the bundle was captured.
type Trigger struct {
	Reason string `json:"reason,omitempty"`
	Check  *Check `json:"check,omitempty"`
	// Systemd holds SERVICE_RESULT, EXIT_CODE, EXIT_STATUS and the unit name when
	// the capture was started by systemd (ExecStopPost=, OnFailure=).
	Systemd map[string]string `json:"systemd,omitempty"`
	// Alert is the Alertmanager alert that triggered the capture (watch
	// --webhook).
	Alert *Alert `json:"alert,omitempty"`
	// Listener is the listen-path problem that triggered the capture
	// (watch --all-netns): which listener of the captured namespace, and
	// what was seen.
	Listener *ListenerProblem `json:"listener,omitempty"`
}

// Kinds of ListenerProblem.
const (
	// ProblemAcceptQueueFull: the listener's accept queue is over its backlog.
	ProblemAcceptQueueFull = "accept-queue-full"
	// ProblemListenerDrops: the listener's own drop counter moved.
	ProblemListenerDrops = "listener-drops"
	// ProblemSynQueueNearFull: the listener's SYN-RECV requests are at
	// three quarters of its backlog or more.
	ProblemSynQueueNearFull = "syn-queue-near-full"
	// ProblemCounter: a listen-path TcpExt counter of the namespace rose.
	ProblemCounter = "counter"
	// ProblemPort: no problem, but the listener is on a --port asked for.
	ProblemPort = "port"
)

// ListenerProblem is a listen-path problem seen in one network namespace by
// a passive look at its listeners and counters (capture --all-netns chooses
// the namespaces to detail by it, watch --all-netns triggers on it).
type ListenerProblem struct {
	// Kind is one of the Problem constants.
	Kind string `json:"kind"`
	// Listener is the listener's local ADDR:PORT; "" for a namespace
	// counter that no single listener can be blamed for.
	Listener string `json:"listener,omitempty"`
	Port     int    `json:"port,omitempty"`
	// Counter names the TcpExt counter of a ProblemCounter
	// ("TcpExt.ListenOverflows").
	Counter string `json:"counter,omitempty"`
	// Detail says what was seen, for a person.
	Detail string `json:"detail"`
}

// Alert is an Alertmanager alert as its webhook delivered it.
type Alert struct {
	// Name is the alertname label.
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// StartsAt is when the alert began firing, RFC 3339.
	StartsAt     string `json:"starts_at,omitempty"`
	Fingerprint  string `json:"fingerprint,omitempty"`
	GeneratorURL string `json:"generator_url,omitempty"`
}

// Check is the health check whose failure triggered the capture.
type Check struct {
	Kind      string  `json:"kind"`
	Target    string  `json:"target"`
	Result    string  `json:"result"`
	Error     string  `json:"error,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
}

// Options records the capture settings, so a reader knows what was asked for.
type Options struct {
	Ports   []int `json:"ports,omitempty"`
	Samples int   `json:"samples"`
	// History is how many of the bundle's first samples were taken before the
	// capture, by the watchdog; the capture's own samples follow them.
	History     int     `json:"history_samples,omitempty"`
	IntervalMS  float64 `json:"interval_ms"`
	SampleMS    float64 `json:"packet_sample_ms"`
	DeadlineMS  float64 `json:"deadline_ms"`
	SocketCap   int     `json:"socket_cap"`
	PacketLimit int     `json:"packet_limit"`
	Payload     bool    `json:"payload,omitempty"`
}

// CollectorStatus is one collector's outcome.
type CollectorStatus struct {
	Name       string   `json:"name"`
	Status     Status   `json:"status"`
	Error      string   `json:"error,omitempty"`
	DurationMS float64  `json:"duration_ms"`
	Files      []string `json:"files,omitempty"`
	// Notes are what a person should know about a collector that was
	// nonetheless ok: "3 of 1290 sysctls unreadable", "kmsg tail cut at 2000 lines".
	Notes []string `json:"notes,omitempty"`
}

// SocketsInfo describes the socket table members.
type SocketsInfo struct {
	// Total is every TCP socket the kernel reported, whatever the cap.
	Total int `json:"total"`
	// Written is the number of rows in sockets/tcp.jsonl.
	Written int `json:"written"`
	Cap     int `json:"cap"`
	// Truncated is true when Written < Total.
	Truncated bool `json:"truncated"`
}

// PacketsInfo describes the packet sample.
type PacketsInfo struct {
	Filter     string  `json:"filter"`
	Snaplen    int     `json:"snaplen"`
	DurationMS float64 `json:"duration_ms"`
	Packets    int     `json:"packets"`
	Bytes      int64   `json:"bytes"`
	// KernelDrops is what the kernel dropped before snapdiag read it
	// (PACKET_STATISTICS tp_drops).
	KernelDrops uint32 `json:"kernel_drops"`
	MaxPackets  int    `json:"max_packets"`
	MaxBytes    int64  `json:"max_bytes"`
	// StoppedBy is why the sample ended: "window", "packet limit", "byte
	// limit", "deadline", "signal" (a stop signal, Manifest.Signal), "error".
	StoppedBy string `json:"stopped_by"`
	// Keeps says, typed, which segments beyond SYN, FIN and RST the filter
	// kept; nil in bundles written before it was recorded (Filter then
	// says it in tcpdump's syntax).
	Keeps *PacketKeeps `json:"keeps,omitempty"`
	// Sampling says how the sample kept a share of what the filter matched
	// when the traffic was more than its limits hold; nil in bundles written
	// before it was recorded, which kept every packet until a limit.
	Sampling *PacketSampling `json:"sampling,omitempty"`
}

// KmsgInfo describes the kernel log tail.
type KmsgInfo struct {
	Lines     int  `json:"lines"`
	Truncated bool `json:"truncated"`
}

// SysctlsInfo describes the sysctl tree walk.
type SysctlsInfo struct {
	Read       int `json:"read"`
	Unreadable int `json:"unreadable"`
	// UnreadableKeys names the unreadable ones (their paths under
	// proc/sys), the first MaxUnreadableKeys of them.
	UnreadableKeys []string `json:"unreadable_keys,omitempty"`
	// FromHost counts the net.* keys of a capture of another namespace
	// that the namespace does not show, read from the capturing process's
	// namespace instead: the kernel's global ones (net.core.netdev_max_backlog,
	// net.ipv4.tcp_mem), which hold for every namespace. 0 when the
	// capture read its own namespace.
	FromHost int `json:"from_host,omitempty"`
	// FromHostKeys names them (their paths under proc/sys), the first
	// MaxFromHostKeys.
	FromHostKeys []string `json:"from_host_keys,omitempty"`
}

// MaxFromHostKeys bounds SysctlsInfo.FromHostKeys: a kernel has about a
// hundred global net.* keys.
const MaxFromHostKeys = 256

// MaxUnreadableKeys bounds SysctlsInfo.UnreadableKeys: a broken proc copy
// may refuse thousands.
const MaxUnreadableKeys = 32

// Collector returns the status of the named collector, or nil.
func (m *Manifest) Collector(name string) *CollectorStatus {
	for i := range m.Collectors {
		if m.Collectors[i].Name == name {
			return &m.Collectors[i]
		}
	}
	return nil
}

// ErrFormat is wrapped by errors about a manifest of another format or a
// malformed one.
var ErrFormat = errors.New("not a snapdiag-bundle/1 manifest")

// ParseManifest decodes a manifest and checks its format.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%w: format %q", ErrFormat, m.Format)
	}
	return &m, nil
}
