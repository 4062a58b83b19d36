package netns

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// Roots are the host directories that finding a container and its owner
// reads: the proc root, and the runtimes' state under /run and /var/lib.
// Tests lay out a fake tree and pass its directories; an empty field is
// the host's own (/proc, /run, /var/lib).
type Roots struct {
	// Proc holds the processes' cgroup and environ files.
	Proc string
	// Run holds containerd's task bundles (containerd/io.containerd.
	// runtime.v2.task/NAMESPACE/ID/config.json) and CRI-O's
	// (containers/storage/overlay-containers/ID/userdata/config.json).
	Run string
	// VarLib holds Docker's containers (docker/containers/ID/
	// config.v2.json) and containers/storage's list, which names Podman's
	// and CRI-O's containers (containers/storage/overlay-containers/
	// containers.json).
	VarLib string
}

// Environment variables that move the state roots for HostRoots: a node
// agent that mounts the host's /run or /var/lib somewhere else says where.
const (
	EnvHostRun    = "SNAPDIAG_HOST_RUN"
	EnvHostVarLib = "SNAPDIAG_HOST_VAR_LIB"
)

// HostRoots is the host's Roots with proc as the proc root: Run and VarLib
// come from $SNAPDIAG_HOST_RUN and $SNAPDIAG_HOST_VAR_LIB when set.
func HostRoots(proc string) Roots {
	return Roots{Proc: proc, Run: os.Getenv(EnvHostRun), VarLib: os.Getenv(EnvHostVarLib)}
}

func (r Roots) proc() string   { return cmp.Or(r.Proc, "/proc") }
func (r Roots) run() string    { return cmp.Or(r.Run, "/run") }
func (r Roots) varLib() string { return cmp.Or(r.VarLib, "/var/lib") }

// MinPrefix is the fewest hex digits FindContainer takes as an id prefix:
// fewer would match containers by accident on a busy node.
const MinPrefix = 4

// FindContainer returns the lowest pid in the container that ref names,
// with the proc root given and the host's runtime state (HostRoots).
func FindContainer(proc, ref string) (int, error) {
	return HostRoots(proc).FindContainer(ref)
}

// OwnerOf returns the container that process pid runs in, with the proc
// root given and the host's runtime state (HostRoots); nil when it is in
// none.
func OwnerOf(proc string, pid int) *bundle.Owner {
	return HostRoots(proc).OwnerOf(pid)
}

// container is one container found among the processes.
type container struct {
	pid int // its lowest pid
	cg  cgroupOwner
}

// FindContainer returns the lowest pid in the container that ref names.
// ref is a container id or a unique prefix of one (at least MinPrefix hex
// digits), found from the processes' cgroups with no runtime asked; or,
// when no id starts so, a name the runtime's state files give: the
// container's name (docker or podman --name, the Kubernetes container
// name), POD/CONTAINER or NAMESPACE/POD/CONTAINER. A ref that names no
// container is an ErrNoContainer, one that names several an
// *AmbiguousError.
func (r Roots) FindContainer(ref string) (int, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return 0, errors.New("--container needs a container id, id prefix or name")
	}
	byID, err := r.containers()
	if err != nil {
		return 0, err
	}
	if id := strings.ToLower(ref); len(id) >= MinPrefix && isHex(id) {
		var ids []string
		for full := range byID {
			if strings.HasPrefix(full, id) {
				ids = append(ids, full)
			}
		}
		switch len(ids) {
		case 1:
			return byID[ids[0]].pid, nil
		case 0:
			// Perhaps a name made of hex digits: look at the names.
		default:
			return 0, r.ambiguous(ref, byID, ids)
		}
	}
	st := r.newStateReader()
	var ids []string
	for id, c := range byID {
		if nameMatches(ref, r.owner(c.pid, c.cg, st)) {
			ids = append(ids, id)
		}
	}
	switch len(ids) {
	case 0:
		return 0, fmt.Errorf("--container %s: %w (an id prefix needs at least %d hex digits)", ref, ErrNoContainer, MinPrefix)
	case 1:
		return byID[ids[0]].pid, nil
	}
	return 0, r.ambiguous(ref, byID, ids)
}

// nameMatches reports whether ref names the container o.
func nameMatches(ref string, o *bundle.Owner) bool {
	if o.Name == "" {
		return false
	}
	if ref == o.Name {
		return true
	}
	if p := o.Pod; p != nil && p.Name != "" {
		return ref == p.Name+"/"+o.Name || ref == p.Namespace+"/"+p.Name+"/"+o.Name
	}
	return false
}

// ErrNoContainer is FindContainer's error when no process is in a
// container that the reference names.
var ErrNoContainer = errors.New("no process is in a container with that id or name")

// AmbiguousError is FindContainer's error when a reference names more than
// one container.
type AmbiguousError struct {
	// Ref is the reference given.
	Ref string
	// IDs are the full ids of the containers it names, sorted.
	IDs []string
	// Names are what each is, for a person ("3f2a9c1b7d4e (pod
	// shop/web (container nginx))"), in the order of IDs.
	Names []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("--container %s is ambiguous: it matches %s", e.Ref, strings.Join(e.Names, ", "))
}

// ambiguous says which containers ref matches, by short id and name.
func (r Roots) ambiguous(ref string, byID map[string]container, ids []string) error {
	slices.Sort(ids)
	st := r.newStateReader()
	e := &AmbiguousError{Ref: ref, IDs: ids}
	for _, id := range ids {
		c := byID[id]
		s := bundle.ShortID(id)
		if n := (&bundle.NetNS{Owner: r.owner(c.pid, c.cg, st)}).String(); n != "container "+s {
			s += " (" + n + ")"
		}
		e.Names = append(e.Names, s)
	}
	return e
}

// containers lists the containers the processes under the proc root are
// in, by full id, each with its lowest pid. Runtime monitors (conmon) are
// not in their container and are left out.
func (r Roots) containers() (map[string]container, error) {
	ents, err := os.ReadDir(r.proc())
	if err != nil {
		return nil, fmt.Errorf("list processes in %s: %w", r.proc(), err)
	}
	found := map[string]container{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		cg, err := r.cgroup(pid)
		if err != nil || cg.ID == "" || cg.Monitor {
			continue // gone since the listing, or in no container
		}
		if c, ok := found[cg.ID]; !ok || pid < c.pid {
			found[cg.ID] = container{pid: pid, cg: cg}
		}
	}
	return found, nil
}

// cgroup reads and parses /proc/PID/cgroup.
func (r Roots) cgroup(pid int) (cgroupOwner, error) {
	b, err := readLimit(filepath.Join(r.proc(), strconv.Itoa(pid), "cgroup"), maxCgroupBytes)
	if err != nil {
		return cgroupOwner{}, err
	}
	return parseCgroup(b), nil
}

// OwnerOf returns the container that process pid runs in, nil when it is
// in none (or is a runtime's monitor, which runs in the host's
// namespaces). The id, and often the runtime and the pod's uid, come from
// its cgroup path; its name, image and pod from the runtime's state files;
// the pod's name, when nothing else gave it, from the process's $HOSTNAME.
// Whatever cannot be read is left empty.
func (r Roots) OwnerOf(pid int) *bundle.Owner {
	cg, err := r.cgroup(pid)
	if err != nil || cg.ID == "" || cg.Monitor {
		return nil
	}
	return r.owner(pid, cg, r.newStateReader())
}

// maxNamespaceContainers bounds the containers NamespaceOwner looks at in
// one namespace: a pod has its sandbox and a few containers.
const maxNamespaceContainers = 16

// NamespaceOwner returns the container that owns a network namespace,
// given processes in it, nil when none is in a container. A pod's
// namespace holds its sandbox (pause) container, which has no name, and
// its containers: the first named container, by pid, names it; the
// sandbox only when no other is found.
func (r Roots) NamespaceOwner(pids []int) *bundle.Owner {
	return r.namespaceOwner(pids, r.newStateReader())
}

// namespaceOwner is NamespaceOwner reading the state files through st,
// which a scan of many namespaces shares: containers/storage's list, which
// names every Podman and CRI-O container of the host, is then read once.
func (r Roots) namespaceOwner(pids []int, st *stateReader) *bundle.Owner {
	seen := map[string]bool{}
	var first *bundle.Owner
	for _, pid := range slices.Sorted(slices.Values(pids)) {
		cg, err := r.cgroup(pid)
		if err != nil || cg.ID == "" || cg.Monitor || seen[cg.ID] {
			continue
		}
		if len(seen) == maxNamespaceContainers {
			break
		}
		seen[cg.ID] = true
		o := r.owner(pid, cg, st)
		if o.Name != "" {
			return o
		}
		if first == nil {
			first = o
		}
	}
	return first
}

// owner completes what the cgroup path said about pid's container.
func (r Roots) owner(pid int, cg cgroupOwner, st *stateReader) *bundle.Owner {
	s := st.lookup(cg)
	o := &bundle.Owner{
		ContainerID: cg.ID,
		// A runtime the cgroup's name gives is certain; a bare id is
		// known from the state file that holds it.
		Runtime: cmp.Or(cg.Runtime, s.Runtime),
		Name:    s.Name,
		Image:   s.Image,
		Cgroup:  cg.Path,
	}
	pod := bundle.Pod{Name: s.PodName, Namespace: s.PodNamespace, UID: cmp.Or(s.PodUID, cg.PodUID)}
	if pod.Name == "" {
		env := r.environ(pid)
		if env.Kubernetes && env.Hostname != "" && !r.hostNetwork(pid) {
			pod.Name = env.Hostname
		}
	}
	if pod != (bundle.Pod{}) {
		o.Pod = &pod
	}
	return o
}

// environ reads what pid's environment says of its pod, nothing when it
// cannot be read (reading another process's environ needs ptrace access:
// root with CAP_SYS_PTRACE, or the same user).
func (r Roots) environ(pid int) environ {
	b, err := readLimit(filepath.Join(r.proc(), strconv.Itoa(pid), "environ"), maxEnvironBytes)
	if err != nil {
		return environ{}
	}
	return parseEnviron(b)
}

// hostNetwork reports whether pid shares the host's network namespace: a
// hostNetwork pod, whose $HOSTNAME is the node's name, not the pod's. The
// host's is PID 1's; when that cannot be read (a sandbox that hides PID 1
// from ptrace), this process's own stands in for it. When neither can be
// compared it says false.
func (r Roots) hostNetwork(pid int) bool {
	a, err := os.Stat(filepath.Join(r.proc(), strconv.Itoa(pid), "ns/net"))
	if err != nil {
		return false
	}
	for _, host := range []string{"1/ns/net", "self/ns/net"} {
		if b, err := os.Stat(filepath.Join(r.proc(), host)); err == nil {
			return os.SameFile(a, b)
		}
	}
	return false
}
