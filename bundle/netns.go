package bundle

import "strconv"

// How a capture named the network namespace it looked at (NetNS.NamedBy).
const (
	// NamedBySelf: no namespace was asked for; the capture read the one
	// it ran in.
	NamedBySelf = "self"
	// NamedByNetNS: --netns, an ip netns name or a path to a namespace
	// file (a bind mount, /proc/PID/ns/net).
	NamedByNetNS = "netns"
	// NamedByPID: --pid, the namespace of that process.
	NamedByPID = "pid"
	// NamedByContainer: --container, the namespace of the container's
	// processes, found from their cgroup.
	NamedByContainer = "container"
	// NamedByScan: capture --all-netns found it among the host's processes
	// or under /run/netns.
	NamedByScan = "scan"
)

// NetNS names a network namespace that a capture read, and who owns it. The
// listeners, the socket table, /proc/net, the net.* sysctls and the packet
// sample are per namespace; the kernel log, the system files and the fs.*
// sysctls are the host's whatever the namespace.
type NetNS struct {
	// Inode is the namespace's inode number, as ls -L -i /proc/PID/ns/net
	// and lsns show it: the same number names the same namespace for as
	// long as it exists.
	Inode uint64 `json:"inode"`
	// NamedBy is how the namespace was chosen: NamedBySelf, NamedByNetNS,
	// NamedByPID, NamedByContainer or NamedByScan.
	NamedBy string `json:"named_by"`
	// Name is what the operator gave (an ip netns name, a path, a pid, a
	// container id or prefix); for NamedByScan, the namespace's ip netns
	// name when it has one; empty for NamedBySelf.
	Name string `json:"name,omitempty"`
	// Path is the namespace file snapdiag opened: /run/netns/NAME,
	// /proc/PID/ns/net, or a bind mount.
	Path string `json:"path,omitempty"`
	// PID is a process in the namespace, when one is known (0 otherwise):
	// the one named with --pid, the container's first process, or for a
	// scanned namespace the lowest pid in it.
	PID int `json:"pid,omitempty"`
	// Comm is that process's command name.
	Comm string `json:"comm,omitempty"`
	// HostNS is true when this is the host's own namespace, the one of
	// PID 1.
	HostNS bool `json:"host_ns,omitempty"`
	// Owner is the container and pod the namespace belongs to, when its
	// processes are in a container's cgroup; nil otherwise.
	Owner *Owner `json:"owner,omitempty"`
}

// Owner is the container, and the Kubernetes pod, that a namespace's
// processes run in. Every field is what could be learned without asking
// the runtime: from the process's cgroup path, its environment, and the
// runtime's state files on the host. Empty fields were not found.
type Owner struct {
	// ContainerID is the runtime's full container id (64 hex digits for
	// Docker, containerd, CRI-O and Podman).
	ContainerID string `json:"container_id,omitempty"`
	// Runtime is "docker", "containerd", "cri-o" or "podman".
	Runtime string `json:"runtime,omitempty"`
	// Name is the container's name (Kubernetes' container name, or
	// Docker's and Podman's --name).
	Name string `json:"name,omitempty"`
	// Image is the container's image reference.
	Image string `json:"image,omitempty"`
	// Cgroup is the process's cgroup path the id was found in.
	Cgroup string `json:"cgroup,omitempty"`
	// Pod is set when the container runs in a Kubernetes pod.
	Pod *Pod `json:"pod,omitempty"`
}

// Pod names a Kubernetes pod.
type Pod struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	UID       string `json:"uid,omitempty"`
}

// String names the namespace for a person, most specific first:
// "pod imap/dovecot-7d9f (container dovecot)", "container 3f2a9c1b7d4e",
// "netns blue", "pid 4242 (dovecot)", "netns 4026532290".
func (n *NetNS) String() string {
	if n == nil {
		return ""
	}
	if o := n.Owner; o != nil {
		if p := o.Pod; p != nil && p.Name != "" {
			s := "pod " + p.Name
			if p.Namespace != "" {
				s = "pod " + p.Namespace + "/" + p.Name
			}
			if o.Name != "" {
				s += " (container " + o.Name + ")"
			}
			return s
		}
		switch {
		case o.Name != "":
			return "container " + o.Name
		case o.ContainerID != "":
			return "container " + ShortID(o.ContainerID)
		}
	}
	switch {
	case (n.NamedBy == NamedByNetNS || n.NamedBy == NamedByScan) && n.Name != "":
		return "netns " + n.Name
	case n.PID != 0 && n.Comm != "":
		return "pid " + strconv.Itoa(n.PID) + " (" + n.Comm + ")"
	case n.PID != 0:
		return "pid " + strconv.Itoa(n.PID)
	case n.HostNS:
		return "host netns"
	}
	return "netns " + strconv.FormatUint(n.Inode, 10)
}

// ShortID is a container id as docker ps shows it: its first 12 characters.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
