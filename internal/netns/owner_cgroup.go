package netns

import (
	"bytes"
	"strings"
)

// Runtime names, as bundle.Owner.Runtime records them.
const (
	RuntimeDocker     = "docker"
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimePodman     = "podman"
)

// cgroupOwner is what one /proc/PID/cgroup file says about the container
// its process runs in. Only the path is read: nothing here asks a runtime.
type cgroupOwner struct {
	// ID is the innermost 64-hex-digit container id on the path.
	ID string
	// Runtime is the runtime the cgroup's name implies ("" when the name is
	// the bare id, which Docker, containerd and the kubelet's cgroupfs
	// driver all produce).
	Runtime string
	// Parent is the path element just above a bare id: "docker" for
	// Docker's cgroupfs driver, the containerd namespace ("default",
	// "k8s.io", "moby") for containerd without Kubernetes.
	Parent string
	// PodUID is the Kubernetes pod's uid, with its dashes.
	PodUID string
	// Path is the cgroup path the id was found in.
	Path string
	// Monitor is true for a runtime's monitor process (CRI-O's and
	// Podman's conmon), which sits in a cgroup named after the container
	// but is not in it: it is in the host's namespaces.
	Monitor bool
}

// parseCgroup reads the container a /proc/PID/cgroup file names. Each line
// is "hierarchy-ID:controllers:path"; cgroup v2 has the single line
// "0::path", cgroup v1 one line per hierarchy, and a hybrid host both. The
// path may itself hold colons (containerd with the systemd driver on a v1
// controller systemd does not manage writes "...slice:cri-containerd:ID"
// as a literal directory name), so a line is cut at its first two colons
// only. When several lines name a container, the unified line wins, then
// systemd's own hierarchy, then the first controller: on a hybrid host the
// runtimes place a container the same way in each.
func parseCgroup(b []byte) cgroupOwner {
	var best cgroupOwner
	bestRank := 0
	for line := range bytes.Lines(b) {
		hier, rest, ok := strings.Cut(strings.TrimRight(string(line), "\r\n"), ":")
		if !ok {
			continue
		}
		ctrl, path, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		rank := 1
		switch {
		case hier == "0" && ctrl == "":
			rank = 3
		case ctrl == "name=systemd":
			rank = 2
		}
		if rank <= bestRank {
			continue
		}
		if o := parseCgroupPath(path); o.ID != "" {
			best, bestRank = o, rank
		}
	}
	return best
}

// containerPrefixes are the names the runtimes give a container's cgroup
// before its id, longest first where one is the start of another. With the
// systemd driver each is a scope unit ("docker-ID.scope"); with cgroupfs
// CRI-O still writes "crio-ID" and Podman "libpod-ID".
var containerPrefixes = []struct {
	prefix, runtime string
	monitor         bool
}{
	// CRI-O and Podman run a conmon per container in a sibling cgroup
	// named after it; conmon stays in the host's namespaces.
	{"crio-conmon-", RuntimeCRIO, true},
	{"libpod-conmon-", RuntimePodman, true},
	{"crio-", RuntimeCRIO, false},
	// containerd's CRI plugin with SystemdCgroup = true.
	{"cri-containerd-", RuntimeContainerd, false},
	// Docker with the systemd driver, under kubelet+dockershim (or
	// cri-dockerd) too.
	{"docker-", RuntimeDocker, false},
	// podman run --cgroups=split, the default of a Quadlet unit: the
	// container is libpod-payload-ID beside a "runtime" cgroup for conmon,
	// both under the unit's own cgroup.
	{"libpod-payload-", RuntimePodman, false},
	{"libpod-", RuntimePodman, false},
	// nerdctl on containerd with the systemd driver.
	{"nerdctl-", RuntimeContainerd, false},
}

// colonRuntimes are the middle words of a literal "parent:prefix:ID"
// cgroup name (a systemd cgroupsPath written as a directory on a v1
// controller systemd does not manage).
var colonRuntimes = map[string]string{
	"cri-containerd": RuntimeContainerd,
	"crio":           RuntimeCRIO,
	"docker":         RuntimeDocker,
	"libpod":         RuntimePodman,
}

// parseCgroupPath finds the innermost container id on one cgroup path and
// the Kubernetes pod above it. Elements after the container's (crun's
// "container" leaf under libpod-ID.scope or crio-ID.scope, a nested
// runtime's own tree) do not hide it. A path read through a cgroup
// namespace starts with "/.." elements, which are skipped like any other.
func parseCgroupPath(path string) cgroupOwner {
	elems := strings.Split(path, "/")
	for i := len(elems) - 1; i >= 0; i-- {
		e := elems[i]
		// systemd lists a container's rootfs mount as a unit whose name
		// holds the id ("run-docker-...-ID-rootfs.mount", "ID.mount"):
		// never a container's cgroup.
		if strings.HasSuffix(e, ".mount") {
			continue
		}
		o := cgroupOwner{Path: path}
		podElem := ""
		if parent, rt, id, ok := colonElem(e); ok {
			o.ID, o.Runtime, podElem = id, rt, parent
		} else {
			name := strings.TrimSuffix(e, ".scope")
			for _, p := range containerPrefixes {
				if id, ok := strings.CutPrefix(name, p.prefix); ok && isID(id) {
					o.ID, o.Runtime, o.Monitor = id, p.runtime, p.monitor
					break
				}
			}
			if o.ID == "" && isID(e) {
				o.ID = e
				if i > 0 {
					o.Parent = elems[i-1]
				}
				if o.Parent == "docker" {
					o.Runtime = RuntimeDocker
				}
			}
		}
		if o.ID == "" {
			continue
		}
		ancestors := append(elems[:i:i], podElem)
		o.PodUID = podUID(ancestors)
		return o
	}
	return cgroupOwner{}
}

// colonElem splits "kubepods-burstable-podUID.slice:cri-containerd:ID".
func colonElem(e string) (parent, runtime, id string, ok bool) {
	parent, rest, ok := strings.Cut(e, ":")
	if !ok {
		return "", "", "", false
	}
	word, id, ok := strings.Cut(rest, ":")
	rt, known := colonRuntimes[word]
	if !ok || !known || !isID(id) {
		return "", "", "", false
	}
	return parent, rt, id, true
}

// podUID finds the pod's cgroup among a container's ancestors. The kubelet
// names it "pod" + uid under kubepods[/QOS] with the cgroupfs driver
// (/kubepods/burstable/podUID, /kubepods/podUID for a Guaranteed pod), and
// with the systemd driver joins the same names with dashes into nested
// slices after replacing the uid's own dashes with underscores, since a
// dash in a slice name means nesting:
// kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podU_I_D.slice,
// or kubepods.slice/kubepods-podU_I_D.slice for a Guaranteed pod. A pod uid
// is only believed under an element naming kubepods (kind's nodes nest it
// as kubelet.slice/kubelet-kubepods.slice).
func podUID(ancestors []string) string {
	kube := false
	uid := ""
	for _, e := range ancestors {
		if strings.Contains(e, "kubepods") {
			kube = true
		}
		var cand string
		if s, ok := strings.CutSuffix(e, ".slice"); ok {
			i := strings.LastIndex(s, "-pod")
			if i < 0 {
				continue
			}
			cand = strings.ReplaceAll(s[i+len("-pod"):], "_", "-")
		} else if s, ok := strings.CutPrefix(e, "pod"); ok {
			cand = s
		}
		if kube && isPodUID(cand) {
			uid = cand
		}
	}
	return uid
}

// isPodUID reports whether s is a pod uid: a UUID (an API pod) or 32 hex
// digits (a static pod, whose uid is a hash of its manifest).
func isPodUID(s string) bool {
	switch len(s) {
	case 32:
		return isHex(s)
	case 36:
		for i := 0; i < len(s); i++ {
			dash := i == 8 || i == 13 || i == 18 || i == 23
			if dash != (s[i] == '-') || (!dash && !isHexDigit(s[i])) {
				return false
			}
		}
		return true
	}
	return false
}

// isID reports whether s is a full container id: 64 lower-case hex digits.
func isID(s string) bool { return len(s) == 64 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }
