package bundle

import "strconv"

// DirNetNS holds the members of the namespaces capture --all-netns found
// besides the one it ran in: netns/<inode>/ holds one namespace's samples,
// sysctls and, for detail namespaces, socket table, laid out as the top
// level of a bundle is.
const DirNetNS = "netns"

// NetNSDir is the folder of the namespace with inode ino: netns/4026532290.
func NetNSDir(ino uint64) string { return DirNetNS + "/" + strconv.FormatUint(ino, 10) }

// NetNSFile is the path of member name (a top-level member path such as
// SampleFile(0, SampleNetstat) or PathSocketsTCP) inside the folder of the
// namespace with inode ino.
func NetNSFile(ino uint64, name string) string { return NetNSDir(ino) + "/" + name }

// ListenPathSysctls are the sysctls capture --all-netns reads in every
// namespace: the ones the listen-path rules read. Detail namespaces get the
// whole net.* tree.
var ListenPathSysctls = []string{
	"net.core.somaxconn",
	"net.ipv4.tcp_max_syn_backlog",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.tcp_abort_on_overflow",
	"net.ipv4.tcp_synack_retries",
	"net.ipv4.tcp_fastopen",
	"net.ipv4.ip_local_port_range",
}

// NamespacesInfo is what capture --all-netns found: every network namespace
// on the host besides the one the capture ran in (the bundle's top level).
type NamespacesInfo struct {
	// Count is how many namespaces were found, Entries included, Skipped
	// included.
	Count int `json:"count"`
	// Entries are the namespaces captured, in inode order.
	Entries []NamespaceEntry `json:"entries"`
	// Skipped is how many namespaces were found beyond the capture's cap
	// and not captured.
	Skipped int `json:"skipped,omitempty"`
	// DetailCap is the most namespaces given full detail; a namespace with
	// a problem beyond it has Detail false and says so in DetailReason.
	DetailCap int `json:"detail_cap,omitempty"`
}

// NamespaceEntry is one namespace of an --all-netns capture.
type NamespaceEntry struct {
	// NetNS names the namespace (NamedBy is NamedByScan) and its owner.
	NetNS NetNS `json:"netns"`
	// Dir is the namespace's folder in the bundle, NetNSDir(NetNS.Inode).
	Dir string `json:"dir"`
	// Listeners is how many TCP listeners the namespace's last sample holds.
	Listeners int `json:"listeners"`
	// Detail is true when the namespace's socket table and whole net.*
	// sysctl tree were taken.
	Detail bool `json:"detail"`
	// DetailReason says what made the namespace worth full detail (a
	// listen-path problem seen, a --port listener), also when the detail
	// cap kept it from being taken.
	DetailReason string `json:"detail_reason,omitempty"`
	// SynRecvFrom is the first sample whose listeners.json counts SYN-RECV
	// requests (syn_recv): the samples of a namespace dump LISTEN sockets
	// only, until it is chosen for detail. Nil when none does.
	SynRecvFrom *int `json:"syn_recv_from,omitempty"`
	// Packets describes the namespace's packet sample
	// (NetNSFile(inode, PathPackets)), taken from the sample that chose it
	// for detail; nil when none was taken.
	Packets *PacketsInfo `json:"packets,omitempty"`
	// Errors has one line per thing not captured in this namespace.
	Errors []string `json:"errors,omitempty"`
}
