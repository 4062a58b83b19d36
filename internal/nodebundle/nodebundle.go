// Package nodebundle builds whole-node bundles (capture --all-netns) for
// tests, from recorded single-namespace bundles: the top level is one
// recorded bundle, and each namespace's folder holds what the capture
// writes per namespace, taken from another recorded bundle.
package nodebundle

import (
	"bytes"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
)

// Namespace is one namespace of the bundle to build.
type Namespace struct {
	// NetNS names it; Dir is derived from its inode.
	NetNS bundle.NetNS
	// From is the recorded bundle whose per-namespace members it gets.
	From string
	// Detail also copies the socket table and the packet sample, and the
	// whole net.* sysctl tree instead of the listen-path sysctls.
	Detail bool
}

// ListenSysctls are the sysctls a namespace without detail carries: those
// of the listen path.
var ListenSysctls = []string{
	"net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies",
	"net.ipv4.tcp_abort_on_overflow", "net.ipv4.tcp_synack_retries", "net.ipv4.tcp_max_tw_buckets",
	"net.ipv4.ip_local_port_range",
}

// perSample are the members of a sample a namespace carries.
var perSample = []string{bundle.SampleNetstat, bundle.SampleSNMP, bundle.SampleListeners}

var (
	mu     sync.Mutex
	opened = map[string]map[string][]byte{}
)

// members reads every member of the recorded bundle at p, once per test
// binary.
func members(t testing.TB, p string) map[string][]byte {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if m, ok := opened[p]; ok {
		return m
	}
	b, err := bundle.Open(p, bundle.DefaultLimits())
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer b.Close()
	m := map[string][]byte{}
	for _, mi := range b.Members() {
		data, err := fs.ReadFile(b, mi.Name)
		if err != nil {
			t.Fatalf("read %s: %s: %v", p, mi.Name, err)
		}
		m[mi.Name] = data
	}
	opened[p] = m
	return m
}

// Build returns the members of a whole-node bundle whose top level is the
// recorded bundle top, with nss under netns/, and its manifest.
func Build(t testing.TB, top string, nss []Namespace) (*bundle.Manifest, map[string][]byte) {
	t.Helper()
	out := map[string][]byte{}
	for name, data := range members(t, top) {
		if name != bundle.PathManifest {
			out[name] = data
		}
	}
	m, err := bundle.ParseManifest(members(t, top)[bundle.PathManifest])
	if err != nil {
		t.Fatalf("manifest of %s: %v", top, err)
	}
	info := &bundle.NamespacesInfo{Count: len(nss), Entries: []bundle.NamespaceEntry{}}
	listen := map[string]bool{}
	for _, k := range ListenSysctls {
		listen[bundle.SysctlPath(k)] = true
	}
	for _, n := range nss {
		dir := bundle.NetNSDir(n.NetNS.Inode)
		e := bundle.NamespaceEntry{NetNS: n.NetNS, Dir: dir, Detail: n.Detail}
		if n.Detail {
			// Chosen at the first sample: every sample counts SYN-RECV.
			e.DetailReason = "listen-path drops during the window"
			e.SynRecvFrom = new(0)
		}
		var last string
		for name, data := range members(t, n.From) {
			keep := false
			switch {
			case strings.HasPrefix(name, bundle.DirSamples+"/"):
				parts := strings.SplitN(name, "/", 3)
				keep = len(parts) == 3 && slices.Contains(perSample, parts[2])
				if keep && parts[2] == bundle.SampleListeners && name > last {
					last = name
				}
			case strings.HasPrefix(name, bundle.DirSysctl+"/net/"):
				keep = n.Detail || listen[name]
			case strings.HasPrefix(name, "sockets/"), strings.HasPrefix(name, "packets/"):
				keep = n.Detail
			}
			if keep {
				out[dir+"/"+name] = data
			}
		}
		if len(last) > 0 {
			ls, err := bundle.DecodeListeners(bytes.NewReader(members(t, n.From)[last]))
			if err != nil {
				t.Fatalf("%s: %s: %v", n.From, last, err)
			}
			e.Listeners = len(ls)
		}
		info.Entries = append(info.Entries, e)
	}
	m.Namespaces = info
	return m, out
}

// Write builds the whole-node bundle into dir with bundle.Writer and
// returns its path.
func Write(t testing.TB, dir, top string, nss []Namespace) string {
	t.Helper()
	m, ms := Build(t, top, nss)
	w, err := bundle.NewWriter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range ms {
		if err := w.WriteFile(name, data); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	p, err := w.Commit("snapdiag-node.tar.zst", m)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	return p
}

// Pod is the NetNS of a scanned namespace owned by a Kubernetes pod's
// container, as capture --all-netns names one.
func Pod(ino uint64, ns, name, container string) bundle.NetNS {
	return bundle.NetNS{Inode: ino, NamedBy: bundle.NamedByScan, PID: int(ino % 100000), Comm: container,
		Owner: &bundle.Owner{ContainerID: fmt.Sprintf("%064x", ino), Runtime: "containerd", Name: container,
			Pod: &bundle.Pod{Name: name, Namespace: ns, UID: fmt.Sprintf("uid-%d", ino)}}}
}
