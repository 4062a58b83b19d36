package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"golang.org/x/sys/unix"
)

// TestAllNetNSFindsTheTwoSick runs capture --all-netns from the host's
// namespace over 200 lab namespaces that the host's /proc/net cannot see:
// 196 bare ones with a healthy listener, a lab whose listener's SYN queue
// overflows under a sustained flood (cookies off), and a lab whose listener
// never accepts (its accept queue full), each lab a server and a client
// namespace. Every one must be in the bundle with its listeners, counters
// and sysctls, and full detail (socket table, net.* tree, packet sample)
// must be taken for exactly the two sick ones.
func TestAllNetNSFindsTheTwoSick(t *testing.T) {
	testutil.NeedRoot(t, "capture --all-netns enters network namespaces")
	bin := testutil.Snapdiag(t) // built first: building is not the capture's time
	const healthy = 196
	many := lab.NewMany(t, lab.ManyOpts{N: healthy, Port: 8080})
	// Each sick listener is a pod's container (cgroup, environment,
	// containerd's task bundle in one state tree the capture reads), so
	// that its findings can name the pod.
	floodPod := lab.NewFakeContainer(t, lab.FakeContainerOptions{Name: "gateway", PodName: "gateway-6b7c9d5f8-k2j4x", PodNamespace: "edge"})
	stuckPod := lab.NewFakeContainer(t, lab.FakeContainerOptions{Name: "imapd", PodName: "mail-5c8f7b9d4-q7w2z",
		PodNamespace: "mail", Run: floodPod.Run})
	svcBin := lab.Build(t, lab.ServicePackage)
	inPod := func(fc *lab.FakeContainer) lab.Options {
		return lab.Options{ServiceListeners: true, ServiceCommand: slices.Concat([]string{"env"}, fc.Env(), []string{svcBin})}
	}
	fl := lab.New(t, inPod(floodPod))
	flood, err := lab.SYNFlood(fl, lab.SYNFloodOpts{Port: 8080, Backlog: 16, Sustain: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Stop()
	floodPod.Add(flood.Service.Pid())
	al := lab.New(t, inPod(stuckPod))
	// A pod's namespace is made for its sandbox (pause) container, which
	// has no name and the lowest pid: the pod is still named by its
	// container.
	pause, err := al.Start(context.Background(), al.Server, "sleep", "120")
	if err != nil {
		t.Fatal(err)
	}
	lab.NewFakeContainer(t, lab.FakeContainerOptions{NoState: true, PodName: stuckPod.PodName}).Add(pause.Pid())
	stuck, err := lab.AcceptQueueFull(al, lab.AcceptQueueOpts{Port: 8081, Backlog: 8, Clients: 20})
	if err != nil {
		t.Fatal(err)
	}
	stuckPod.Add(stuck.Service.Pid())
	ino := func(name string) uint64 {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(lab.NetnsDir, name), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	sick := map[uint64]string{ino(fl.Server): "SYN flood", ino(al.Server): "accept queue"}
	listeners := map[uint64]int{ino(fl.Server): 1, ino(al.Server): 1, ino(fl.Client): 0, ino(al.Client): 0}
	for _, name := range many.Names {
		listeners[ino(name)] = 1
	}
	if len(listeners) != healthy+4 {
		t.Fatalf("%d lab namespaces, want %d", len(listeners), healthy+4)
	}

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	capture := exec.CommandContext(ctx, bin, "capture", "--all-netns", "--out", dir, "-q")
	capture.Env = append(os.Environ(), floodPod.RunEnv()...)
	out, err := capture.Output()
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	path := lastLine(string(out))
	t.Run("analyze", func(t *testing.T) {
		analyzeTheTwoSick(t, path, listeners, map[uint64]sickNS{
			ino(fl.Server): {pod: floodPod, ids: []string{analyze.IDSynQueueOverflow, analyze.IDSyncookiesActive}, listener: flood.Target.String()},
			ino(al.Server): {pod: stuckPod, ids: []string{analyze.IDAcceptQueueOverflow}, listener: netip.AddrPortFrom(al.ServerIP, 8081).String()},
		})
	})
	t.Run("tui", func(t *testing.T) { tuiNamespacesSickFirst(t, bin, path, floodPod, stuckPod) })
	b := openBundle(t, path)
	m := b.Manifest()
	if st := m.Collector("all-netns"); st == nil || st.Status != bundle.StatusOK {
		t.Fatalf("all-netns collector: %+v", st)
	}
	ns := m.Namespaces
	if ns == nil {
		t.Fatal("manifest has no namespaces")
	}
	if ns.Count < len(listeners) || ns.Skipped != 0 {
		t.Errorf("namespaces count %d skipped %d, want at least %d found and none skipped", ns.Count, ns.Skipped, len(listeners))
	}
	seen := 0
	for _, e := range ns.Entries {
		want, ours := listeners[e.NetNS.Inode]
		if !ours {
			continue // another test's, or the host's containers
		}
		seen++
		if e.Dir != bundle.NetNSDir(e.NetNS.Inode) || e.NetNS.NamedBy != bundle.NamedByScan || len(e.Errors) > 0 {
			t.Errorf("namespace %s: dir %q named_by %q errors %q", e.NetNS.String(), e.Dir, e.NetNS.NamedBy, e.Errors)
		}
		if e.Listeners != want {
			t.Errorf("namespace %s: %d listeners, want %d", e.NetNS.String(), e.Listeners, want)
		}
		last := m.Options.Samples - 1
		data, err := b.ReadFile(bundle.NetNSFile(e.NetNS.Inode, bundle.SampleFile(last, bundle.SampleListeners)))
		if err != nil {
			t.Errorf("namespace %s: %v", e.NetNS.String(), err)
			continue
		}
		ls, err := bundle.DecodeListeners(bytes.NewReader(data))
		if err != nil || len(ls) != want {
			t.Errorf("namespace %s: listeners.json %d listeners (%v), want %d", e.NetNS.String(), len(ls), err, want)
		}
		for _, name := range []string{bundle.SampleFile(last, bundle.SampleNetstat), bundle.SampleFile(last, bundle.SampleSNMP), bundle.SysctlPath("net.core.somaxconn")} {
			if _, err := b.ReadFile(bundle.NetNSFile(e.NetNS.Inode, name)); err != nil {
				t.Errorf("namespace %s: %v", e.NetNS.String(), err)
			}
		}
		what, isSick := sick[e.NetNS.Inode]
		if e.Detail != isSick || (e.DetailReason != "") != isSick {
			t.Errorf("namespace %s (%s): detail %v reason %q, want detail %v", e.NetNS.String(), what, e.Detail, e.DetailReason, isSick)
		}
		if !isSick {
			continue
		}
		t.Logf("%s: %s: %s", what, e.NetNS.String(), e.DetailReason)
		if e.Packets == nil {
			t.Errorf("detail namespace %s: no packet sample in the manifest", e.NetNS.String())
		}
		for _, name := range []string{bundle.PathSocketsTCP, bundle.PathSocketsSummary, bundle.SysctlPath("net.ipv4.tcp_rmem"), bundle.PathPackets} {
			if _, err := b.ReadFile(bundle.NetNSFile(e.NetNS.Inode, name)); err != nil {
				t.Errorf("detail namespace %s: %v", e.NetNS.String(), err)
			}
		}
	}
	if seen != len(listeners) {
		t.Errorf("%d of the %d lab namespaces are in the manifest", seen, len(listeners))
	}
	// The host's own namespace is the top level, not repeated.
	if slices.ContainsFunc(ns.Entries, func(e bundle.NamespaceEntry) bool { return e.NetNS.Inode == m.Host.NetNSInode }) {
		t.Errorf("the capture's own namespace %d is among the entries", m.Host.NetNSInode)
	}
}

// sickNS is what analyze must say of a sick namespace: its pod, the
// finding ids of which at least one is raised (beside what comes with the
// incident: a flood's half-open clients, cookies off as a risky sysctl),
// and the listener they name.
type sickNS struct {
	pod      *lab.FakeContainer
	ids      []string
	listener string
}

// analyzeTheTwoSick runs analyze --format json on the whole-node bundle at
// path: of the lab's namespaces (ours, by inode), exactly the sick ones have
// findings, on their listener and naming their pod; no finding of the
// host's own namespace is about a lab listener.
func analyzeTheTwoSick(t *testing.T, path string, ours map[uint64]int, sick map[uint64]sickNS) {
	rep := analyzeJSON(t, path)
	got := map[uint64][]string{}
	for _, f := range rep.Findings {
		if f.NetNS == nil {
			for _, s := range sick {
				if f.Listener != "" && f.Listener == s.listener {
					t.Errorf("the host's namespace has finding %s on the lab's listener %s", f.ID, f.Listener)
				}
			}
			continue
		}
		ino := f.NetNS.Inode
		if _, lab := ours[ino]; !lab {
			continue // another test's namespace, or the host's containers
		}
		got[ino] = append(got[ino], f.ID)
		s, isSick := sick[ino]
		if !isSick {
			t.Errorf("healthy namespace %s: finding %s (%s)", f.NetNS.String(), f.ID, f.Title)
			continue
		}
		if f.Listener != "" && f.Listener != s.listener {
			t.Errorf("namespace %s: finding %s on listener %s, want %s", f.NetNS.String(), f.ID, f.Listener, s.listener)
		}
		o := f.NetNS.Owner
		if o == nil || o.ContainerID != s.pod.ID || o.Name != s.pod.Name || o.Pod == nil ||
			o.Pod.Name != s.pod.PodName || o.Pod.Namespace != s.pod.PodNamespace || o.Pod.UID != s.pod.PodUID {
			t.Errorf("namespace %d: finding %s names owner %+v, want container %s of pod %s/%s", ino, f.ID, o, s.pod.Name, s.pod.PodNamespace, s.pod.PodName)
		}
	}
	for ino, s := range sick {
		t.Logf("namespace %d (pod %s): findings %v", ino, s.pod.PodName, got[ino])
		if !slices.ContainsFunc(got[ino], func(id string) bool { return slices.Contains(s.ids, id) }) {
			t.Errorf("sick namespace %d (pod %s): findings %v, want one of %v", ino, s.pod.PodName, got[ino], s.ids)
		}
	}
	for _, n := range rep.Namespaces {
		if _, isSick := sick[n.NetNS.Inode]; !isSick && n.Findings > 0 && ours[n.NetNS.Inode] > 0 {
			t.Errorf("namespace summary %s: %d findings, want none", n.NetNS.String(), n.Findings)
		}
	}
}

// tuiNamespacesSickFirst runs snapdiag tui on the whole-node bundle at
// path in a pseudo-terminal: the namespaces view (key 9) lists the sick
// pods' namespaces above every namespace without findings, and Enter puts
// the first in focus.
func tuiNamespacesSickFirst(t *testing.T, bin, path string, pods ...*lab.FakeContainer) {
	tm := newTmux(t, 160, 48, bin, "tui", path)
	tm.waitFor("the findings view", func(s string) bool { return strings.Contains(s, "Findings") })
	tm.keys("9")
	scr := tm.waitFor("the namespaces view", func(s string) bool { return strings.Contains(s, "LISTENERS") })
	lines := strings.Split(scr, "\n")
	firstHealthy := slices.IndexFunc(lines, func(l string) bool {
		f := strings.Fields(strings.Trim(l, "│▌> "))
		return len(f) > 3 && f[0] == "-"
	})
	if firstHealthy < 0 {
		t.Fatalf("no namespace without findings listed:\n%s", scr)
	}
	for _, p := range pods {
		row := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, p.PodName) })
		if row < 0 || row > firstHealthy {
			t.Errorf("pod %s is on line %d, the first namespace without findings on %d:\n%s", p.PodName, row, firstHealthy, scr)
		}
	}
	tm.keys("Enter")
	tm.waitFor("a sick pod in focus", func(s string) bool {
		return slices.ContainsFunc(pods, func(p *lab.FakeContainer) bool {
			return strings.Contains(s, "focus: pod "+p.PodNamespace+"/"+p.PodName)
		})
	})
}

// TestAllNetNSNotRoot: a capture that may not enter the namespaces (as
// nobody, or as root without CAP_SYS_ADMIN) says so in one line, names
// what it missed in each entry, and still captures its own namespace.
func TestAllNetNSNotRoot(t *testing.T) {
	testutil.NeedRoot(t, "the test makes a namespace, then captures as nobody")
	many := lab.NewMany(t, lab.ManyOpts{N: 2, Port: 8080})
	var st0 unix.Stat_t
	if err := unix.Stat(many.Paths[0], &st0); err != nil {
		t.Fatal(err)
	}
	bin, dir := binaryForNobody(t)
	args := []string{"capture", "--all-netns", "--out", dir, "--samples", "1", "--sample", "0", "-q"}
	nobody := exec.Command(bin, args...)
	nobody.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmds := map[string]*exec.Cmd{"nobody": nobody}
	if setpriv, err := exec.LookPath("setpriv"); err == nil {
		// Its own --out: root's lock file there would refuse nobody, and
		// the map's order is random.
		rootArgs := slices.Clone(args)
		rootArgs[slices.Index(rootArgs, dir)] = t.TempDir()
		cmds["root without CAP_SYS_ADMIN"] = exec.Command(setpriv, slices.Concat(
			[]string{"--bounding-set", "-sys_admin", "--inh-caps", "-all", "--", bin}, rootArgs)...)
	} else {
		t.Log("setpriv (util-linux) is not installed: root without CAP_SYS_ADMIN not tried")
	}
	for who, cmd := range cmds {
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Errorf("capture as %s: %v\n%s", who, err, stderr)
			continue
		}
		b := openBundle(t, lastLine(string(out)))
		m := b.Manifest()
		st := m.Collector("all-netns")
		if st == nil || st.Status != bundle.StatusFailed || st.Error == "" {
			t.Errorf("%s: all-netns collector: %+v, want failed with one line", who, st)
			continue
		}
		if _, err := b.ReadFile(bundle.SampleFile(0, bundle.SampleNetstat)); err != nil {
			t.Errorf("%s: own namespace not captured: %v", who, err)
		}
		i := slices.IndexFunc(m.Namespaces.Entries, func(e bundle.NamespaceEntry) bool { return e.NetNS.Inode == st0.Ino })
		if i < 0 {
			t.Errorf("%s: namespace %s (inode %s) not listed", who, many.Names[0], strconv.FormatUint(st0.Ino, 10))
			continue
		}
		if e := m.Namespaces.Entries[i]; len(e.Errors) == 0 || e.Detail {
			t.Errorf("%s: entry %s: errors %q detail %v, want what was missed", who, e.NetNS.String(), e.Errors, e.Detail)
		}
	}
}

// binaryForNobody returns a copy of the snapdiag binary, and a folder to
// write bundles in, that user nobody can reach: each in a folder of its
// own, open to all.
func binaryForNobody(t *testing.T) (bin, out string) {
	t.Helper()
	out = t.TempDir()
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	data, err := os.ReadFile(testutil.Snapdiag(t))
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(binDir, "snapdiag")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{binDir, filepath.Dir(binDir), filepath.Dir(out)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin, out
}
