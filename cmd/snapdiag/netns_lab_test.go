package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"github.com/spf13/cobra"
)

// TestCaptureTargetNamespace: an accept queue that is never drained, in a
// namespace whose listeners the root namespace's /proc/net does not show, is
// captured from the root namespace by --netns, --pid and --container, and
// each bundle is diagnosed as the capture taken inside the namespace is:
// the same findings, on the same listener, of the same process. Each names
// the namespace in its manifest and report.
func TestCaptureTargetNamespace(t *testing.T) {
	// The service runs as a pod's container does: in a cgroup named as
	// the kubelet and containerd name it, with containerd's task bundle
	// and a pod's environment (env execs labsvc: the pid is the service's).
	fc := lab.NewFakeContainer(t, lab.FakeContainerOptions{Name: "imapd", Image: "registry.example/imapd:2.3",
		PodName: "mail-5c8f7b9d4-q7w2z", PodNamespace: "mail"})
	svc := slices.Concat([]string{"env"}, fc.Env(), []string{lab.Build(t, lab.ServicePackage)})
	l := lab.New(t, lab.Options{ServiceListeners: true, ServiceCommand: svc})
	const port = 8081
	// Backlog+1 clients fill the queue and no more: a client whose SYN was
	// dropped would retry during one capture and not another, and the
	// captures would rightly differ.
	aq, err := lab.AcceptQueueFull(l, lab.AcceptQueueOpts{Port: port, Backlog: 8, Clients: 9})
	if err != nil {
		t.Fatal(err)
	}
	pid := aq.Service.Pid()
	if hostListens(t, port) {
		t.Fatalf("the root namespace's /proc/net/tcp shows a listener on %d: the incident is not hidden from it", port)
	}
	nsIno := testutil.Inode(t, filepath.Join(netns.RunDir, l.Server))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"capture", "--quiet", "--samples", "2", "--interval", "300ms", "--sample", "300ms"}
	out, err := l.Exec(ctx, l.Server, testutil.Snapdiag(t), append(args, "--out", t.TempDir())...)
	if err != nil {
		t.Fatalf("capture inside the namespace: %v", err)
	}
	inside := analyzeJSON(t, lastLine(string(out.Stdout)))
	want := findingKeys(inside)
	if !slices.ContainsFunc(want, func(k findingKey) bool { return k.ID == analyze.IDAcceptQueueOverflow }) {
		t.Fatalf("inside the namespace: findings %+v, want %s", want, analyze.IDAcceptQueueOverflow)
	}

	fc.Add(pid)
	owner := &bundle.Owner{ContainerID: fc.ID, Runtime: "containerd", Name: fc.Name, Image: fc.Image,
		Pod: &bundle.Pod{Name: fc.PodName, Namespace: fc.PodNamespace, UID: fc.PodUID}}
	for _, tc := range []struct {
		flag, value string
		named       string
	}{
		{"--netns", l.Server, bundle.NamedByNetNS},
		{"--pid", strconv.Itoa(pid), bundle.NamedByPID},
		{"--container", fc.ID[:12], bundle.NamedByContainer},
		{"--container", fc.Name, bundle.NamedByContainer},
		{"--container", fc.PodName + "/" + fc.Name, bundle.NamedByContainer},
	} {
		r := snapdiag(t, fc.RunEnv(), append(args, tc.flag, tc.value, "--out", t.TempDir())...)
		if r.Code != exitOK {
			t.Fatalf("capture %s %s: exit %d\n%s", tc.flag, tc.value, r.Code, r.Stderr)
		}
		path := lastLine(r.Stdout)
		m := openBundle(t, path).Manifest()
		for _, st := range m.Collectors {
			if st.Status != bundle.StatusOK && st.Status != bundle.StatusAbsent {
				t.Errorf("%s: collector %s %s: %s", tc.flag, st.Name, st.Status, st.Error)
			}
		}
		if m.NetNS == nil {
			t.Errorf("capture %s %s: the manifest names no namespace", tc.flag, tc.value)
		} else if diff := cmp.Diff(owner, m.NetNS.Owner, cmpopts.IgnoreFields(bundle.Owner{}, "Cgroup")); diff != "" {
			t.Errorf("capture %s %s: manifest's netns.owner (-want +got):\n%s", tc.flag, tc.value, diff)
		}
		rep := analyzeJSON(t, path)
		if diff := cmp.Diff(want, findingKeys(rep)); diff != "" {
			t.Errorf("capture %s: findings differ from the capture inside (-inside +%s):\n%s", tc.flag, tc.flag, diff)
		}
		n := rep.Bundle.NetNS
		if n == nil || n.Inode != nsIno || n.NamedBy != tc.named || n.HostNS {
			t.Errorf("capture %s: report names namespace %+v, want inode %d named by %s", tc.flag, n, nsIno, tc.named)
			continue
		}
		if diff := cmp.Diff(owner, n.Owner, cmpopts.IgnoreFields(bundle.Owner{}, "Cgroup")); diff != "" {
			t.Errorf("capture %s %s: report's bundle.netns.owner (-want +got):\n%s", tc.flag, tc.value, diff)
		}
	}
}

// findingKey is what must agree between two diagnoses of one incident.
type findingKey struct {
	ID, Listener string
	PID          int
}

func findingKeys(r analyze.Report) []findingKey {
	var out []findingKey
	for _, f := range r.Findings {
		k := findingKey{ID: f.ID, Listener: f.Listener}
		if f.Process != nil {
			k.PID = f.Process.PID
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b findingKey) int { return strings.Compare(a.ID+a.Listener, b.ID+b.Listener) })
	return out
}

// analyzeJSON runs snapdiag analyze --format json on path.
func analyzeJSON(t *testing.T, path string) analyze.Report {
	t.Helper()
	r := snapdiag(t, nil, "analyze", "--format", "json", path)
	if r.Code != exitOK && r.Code != analyze.ExitWarning && r.Code != analyze.ExitCritical {
		t.Fatalf("analyze %s: exit %d\n%s", path, r.Code, r.Stderr)
	}
	testutil.ValidateReport(t, []byte(r.Stdout))
	var rep analyze.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("analyze %s: %v", path, err)
	}
	return rep
}

// hostListens reports whether the root namespace's /proc/net/tcp lists a
// listener on port.
func hostListens(t *testing.T, port int) bool {
	t.Helper()
	f, err := os.Open("/proc/1/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	suffix := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st: 0A is TCP_LISTEN.
		if len(fields) > 3 && strings.HasSuffix(fields[1], suffix) && fields[3] == "0A" {
			return true
		}
	}
	return false
}

// TestCaptureTargetWithoutSysAdmin: root without CAP_SYS_ADMIN cannot enter
// a namespace, but may read a process's /proc/PID/net: capture --pid,
// --container and --netns (through a process found in it) still write a
// bundle holding the namespace's counters and /proc/net files, and mark
// failed, each with its reason, what only a thread inside it could read.
func TestCaptureTargetWithoutSysAdmin(t *testing.T) {
	testutil.NeedRoot(t, "dropping one capability of root")
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	l, svc, fc, inside := containedService(t, 8082)
	for _, tc := range []struct {
		flag, value, named string
		pid                int // the manifest's netns.pid
	}{
		{"--pid", strconv.Itoa(svc.Pid()), bundle.NamedByPID, svc.Pid()},
		{"--container", fc.ID[:12], bundle.NamedByContainer, svc.Pid()},
		{"--netns", l.Server, bundle.NamedByNetNS, 0},
	} {
		r := testutil.Run(t, runLimit, "", fc.RunEnv(), setpriv, "--bounding-set", "-sys_admin", "--inh-caps", "-all", "--",
			testutil.Snapdiag(t), "capture", "--quiet", "--out", t.TempDir(), "--samples", "1", "--sample", "200ms",
			tc.flag, tc.value)
		if r.Code != exitOK {
			t.Errorf("capture %s without CAP_SYS_ADMIN: exit %d\n%s", tc.flag, r.Code, r.Stderr)
			continue
		}
		path := lastLine(r.Stdout)
		m := openBundle(t, path).Manifest()
		got := map[string]bundle.Status{}
		for _, st := range m.Collectors {
			got[st.Name] = st.Status
			if st.Status == bundle.StatusFailed && st.Error == "" {
				t.Errorf("%s: collector %s failed without saying why", tc.flag, st.Name)
			}
		}
		want := map[string]bundle.Status{
			"counters": bundle.StatusOK, "proc-net": bundle.StatusOK, "system": bundle.StatusOK,
			"sysctls": bundle.StatusFailed, "sockets": bundle.StatusFailed, "listeners": bundle.StatusFailed,
			"processes": bundle.StatusFailed, "packets": bundle.StatusFailed,
		}
		for name, st := range want {
			if got[name] != st {
				t.Errorf("%s: collector %s: %s, want %s", tc.flag, name, got[name], st)
			}
		}
		dev := testutil.ReadMember(t, path, bundle.SampleFile(0, bundle.SampleDev))
		if got, want := testutil.DevNames(dev), testutil.DevNames(inside); !slices.Equal(got, want) {
			t.Errorf("%s: sampled /proc/net/dev lists %v, the namespace has %v", tc.flag, got, want)
		}
		if n := m.NetNS; n == nil || n.PID != tc.pid || n.NamedBy != tc.named || n.Owner == nil || n.Owner.ContainerID != fc.ID {
			t.Errorf("%s: manifest netns %+v, want pid %d named by %s, owned by container %s", tc.flag, n, tc.pid, tc.named, fc.ID)
		}
	}
}

// TestCaptureTargetNotRoot: a user who may not open root's namespace files
// (no CAP_SYS_PTRACE) may still read a root process's /proc/PID/net:
// capture --pid and --container write a bundle of the namespace's counters
// and /proc/net files, each collector that needed the inside failed with
// its reason. --netns NAME, whose processes it cannot tell, writes a bundle
// that names the namespace and holds only the host's files.
func TestCaptureTargetNotRoot(t *testing.T) {
	testutil.NeedRoot(t, "the test makes a namespace, then captures as nobody")
	l, svc, fc, inside := containedService(t, 8083)
	bin, dir := binaryForNobody(t)
	nobody := func(args ...string) testutil.Result {
		ctx, cancel := context.WithTimeout(context.Background(), runLimit)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"capture", "--quiet", "--out", dir, "--samples", "1", "--sample", "0"}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := cmd.ProcessState.ExitCode()
		if err != nil && code < 0 {
			t.Fatalf("capture %v as nobody: %v", args, err)
		}
		return testutil.Result{Code: code, Stdout: stdout.String(), Stderr: stderr.String()}
	}
	for _, tc := range []struct{ flag, value string }{
		{"--pid", strconv.Itoa(svc.Pid())},
		{"--container", fc.ID[:12]},
	} {
		r := nobody(tc.flag, tc.value)
		if r.Code != exitOK {
			t.Errorf("capture %s as nobody: exit %d\n%s", tc.flag, r.Code, r.Stderr)
			continue
		}
		path := lastLine(r.Stdout)
		m := openBundle(t, path).Manifest()
		for _, name := range []string{"counters", "proc-net"} {
			if st := m.Collector(name); st == nil || st.Status != bundle.StatusOK {
				t.Errorf("%s: collector %s: %+v, want ok", tc.flag, name, st)
			}
		}
		for _, name := range []string{"sysctls", "sockets", "listeners"} {
			if st := m.Collector(name); st == nil || st.Status != bundle.StatusFailed || st.Error == "" {
				t.Errorf("%s: collector %s: %+v, want failed with its reason", tc.flag, name, st)
			}
		}
		dev := testutil.ReadMember(t, path, bundle.SampleFile(0, bundle.SampleDev))
		if got, want := testutil.DevNames(dev), testutil.DevNames(inside); !slices.Equal(got, want) {
			t.Errorf("%s: sampled /proc/net/dev lists %v, the namespace has %v", tc.flag, got, want)
		}
		if n := m.NetNS; n == nil || n.PID != svc.Pid() || n.Owner == nil || n.Owner.ContainerID != fc.ID {
			t.Errorf("%s: manifest netns %+v, want pid %d of container %s", tc.flag, n, svc.Pid(), fc.ID)
		}
	}
	// --netns as nobody: no process in the namespace can be found, so
	// nothing of it is read; the bundle names it, says why each of its
	// collectors failed, and holds no /proc/net file (which would be the
	// capturing process's own namespace's, not the one asked for).
	r := nobody("--netns", l.Server)
	if r.Code != exitOK || r.Stderr == "" {
		t.Fatalf("capture --netns as nobody: exit %d, stderr %q; want a bundle and why it is partial", r.Code, r.Stderr)
	}
	path := lastLine(r.Stdout)
	m := openBundle(t, path).Manifest()
	for _, name := range []string{"counters", "proc-net", "sockets", "listeners"} {
		if st := m.Collector(name); st == nil || st.Status != bundle.StatusFailed || st.Error == "" {
			t.Errorf("--netns as nobody: collector %s: %+v, want failed with its reason", name, st)
		}
	}
	if st := m.Collector("system"); st == nil || st.Status != bundle.StatusOK {
		t.Errorf("--netns as nobody: collector system: %+v, want ok (the host's files)", st)
	}
	for _, member := range []string{bundle.SampleFile(0, bundle.SampleNetstat), bundle.SampleFile(0, bundle.SampleDev), "proc/net/snmp6"} {
		if testutil.ReadMember(t, path, member) != nil {
			t.Errorf("--netns as nobody: the bundle holds %s, which can only be this process's own namespace's", member)
		}
	}
	if n := m.NetNS; n == nil || n.NamedBy != bundle.NamedByNetNS || n.Name != l.Server {
		t.Errorf("--netns as nobody: manifest netns %+v, want the namespace asked for", n)
	}
}

// TestTargetCompletion: --netns completes the ip netns names, or as a file
// once a slash is typed, and --container the short ids of the containers
// running, found from their cgroups.
func TestTargetCompletion(t *testing.T) {
	l := lab.New(t, lab.Options{})
	p, err := l.Start(context.Background(), l.Server, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctr := lab.NewFakeContainer(t, lab.FakeContainerOptions{})
	ctr.Add(p.Pid())
	words := func(cs []cobra.Completion) []string {
		var out []string
		for _, c := range cs {
			w, _, _ := strings.Cut(c, "\t")
			out = append(out, w)
		}
		return out
	}
	names, dir := completeNetns(nil, nil, l.Server[:len(l.Server)-2])
	if !slices.Contains(words(names), l.Server) || dir != cobra.ShellCompDirectiveNoFileComp {
		t.Errorf("--netns completes to %v (directive %d), want %s among them", names, dir, l.Server)
	}
	if _, dir := completeNetns(nil, nil, "/proc/"); dir != cobra.ShellCompDirectiveDefault {
		t.Errorf("--netns /proc/ completes with directive %d, want files", dir)
	}
	ids, _ := completeContainers(nil, nil, ctr.ID[:6])
	if got := words(ids); !slices.Equal(got, []string{bundle.ShortID(ctr.ID)}) {
		t.Errorf("--container %s completes to %v, want %s", ctr.ID[:6], got, bundle.ShortID(ctr.ID))
	}
}

// containedService starts, in a lab namespace, a service on port that never
// accepts, put in a fake Kubernetes container, and returns them with the
// namespace's /proc/net/dev as read from inside it.
func containedService(t *testing.T, port uint16) (*lab.Lab, *lab.Proc, *lab.FakeContainer, []byte) {
	t.Helper()
	l := lab.New(t, lab.Options{ServiceListeners: true})
	svc, err := l.Service(context.Background(), netip.AddrPortFrom(l.ServerIP, port), 16, lab.NeverAccept)
	if err != nil {
		t.Fatal(err)
	}
	fc := lab.NewFakeContainer(t, lab.FakeContainerOptions{})
	// Registered after the container's, so it runs first, as a defer in
	// the test did: the service ends before its cgroup is removed.
	t.Cleanup(func() { _ = svc.Stop() })
	fc.Add(svc.Pid())
	inside, err := l.ReadNet(l.Server, "dev")
	if err != nil {
		t.Fatal(err)
	}
	return l, svc, fc, inside
}
