package bundle

import "strconv"

// DirNetNS holds one folder per network namespace of a whole-node bundle
// (capture --all-netns): netns/<inode>/, laid out as a bundle of its own
// (samples/, proc/sys/, sockets/, packets/) for what is per namespace.
const DirNetNS = "netns"

// NamespaceDir is the folder of the namespace with inode ino: netns/<inode>.
func NamespaceDir(ino uint64) string { return DirNetNS + "/" + strconv.FormatUint(ino, 10) }

// NamespacesInfo lists the network namespaces a whole-node bundle holds
// besides the host's own, which is the bundle's top level.
type NamespacesInfo struct {
	// Count is the number of namespaces the capture found.
	Count int `json:"count"`
	// Entries are the namespaces written, one folder each.
	Entries []NamespaceEntry `json:"entries"`
	// Skipped is the number of namespaces found but not written (a limit,
	// the deadline, or a namespace that went away).
	Skipped int `json:"skipped,omitempty"`
}

// NamespaceEntry is one network namespace of a whole-node bundle.
type NamespaceEntry struct {
	// NetNS names the namespace and its owner (NamedBy is NamedByScan).
	NetNS NetNS `json:"netns"`
	// Dir is the namespace's folder, NamespaceDir(NetNS.Inode).
	Dir string `json:"dir"`
	// Listeners is the number of listening sockets found in it.
	Listeners int `json:"listeners"`
	// Detail is true when the socket table and packets were captured too;
	// DetailReason says why (a listen-path problem, --port).
	Detail       bool   `json:"detail"`
	DetailReason string `json:"detail_reason,omitempty"`
	// Errors are what could not be captured from this namespace, one line
	// each.
	Errors []string `json:"errors,omitempty"`
}
