package netns_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
)

// startInPod starts a process with a pod's environment, in a network
// namespace of its own unless hostNetwork, and moves it into fc's cgroup.
// It is killed when the test ends.
func startInPod(t *testing.T, fc *lab.FakeContainer, hostNetwork bool) int {
	t.Helper()
	pid := testutil.Sleep(t, 120, !hostNetwork, fc.Env()...)
	if err := fc.Adopt(pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// unifiedCgroup is pid's cgroup2 path as the kernel shows it.
func unifiedCgroup(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			return p
		}
	}
	t.Fatalf("pid %d has no cgroup2 line in %q", pid, b)
	return ""
}

// TestOwnerOfKubeletCgroup puts a real process in a real cgroup named as
// the kubelet and containerd name a pod's container, with a pod's
// environment and containerd's task bundle, and finds the container and
// its pod from /proc; then moves it out, and it is no longer found.
func TestOwnerOfKubeletCgroup(t *testing.T) {
	fc := lab.NewFakeContainer(t, lab.FakeContainerOptions{Name: "nginx", PodName: "web-7d9f8c6b5-x2x4q", PodNamespace: "shop"})
	pid := startInPod(t, fc, false)
	roots := netns.Roots{Run: fc.Run}

	cg := unifiedCgroup(t, pid)
	if !strings.HasSuffix(cg, "/kubepods-burstable-pod"+strings.ReplaceAll(fc.PodUID, "-", "_")+".slice/cri-containerd-"+fc.ID+".scope") {
		t.Fatalf("the process's cgroup is %s, not the fake container's", cg)
	}
	want := &bundle.Owner{ContainerID: fc.ID, Runtime: "containerd", Name: "nginx", Image: fc.Image, Cgroup: cg,
		Pod: &bundle.Pod{Name: "web-7d9f8c6b5-x2x4q", Namespace: "shop", UID: fc.PodUID}}
	if diff := cmp.Diff(want, roots.OwnerOf(pid)); diff != "" {
		t.Errorf("OwnerOf (-want +got):\n%s", diff)
	}
	for _, ref := range []string{fc.ID, fc.ID[:8], "shop/web-7d9f8c6b5-x2x4q/nginx"} {
		if got, err := roots.FindContainer(ref); err != nil || got != pid {
			t.Errorf("FindContainer(%q) = %d, %v; want %d", ref, got, err, pid)
		}
	}

	if err := fc.Release(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(roots.OwnerOf(os.Getpid()), roots.OwnerOf(pid)); diff != "" {
		t.Errorf("moved out, the process is still in a container (-test's own +got):\n%s", diff)
	}
	if got, err := roots.FindContainer(fc.ID); err == nil {
		t.Errorf("moved out, FindContainer still finds pid %d", got)
	}
}

// TestOwnerOfKubeletCgroupEnvironment: with no runtime state to read, the
// cgroup path gives the container, the runtime and the pod's uid, and the
// environment the pod's name, except in a hostNetwork pod, whose
// $HOSTNAME is the node's.
func TestOwnerOfKubeletCgroupEnvironment(t *testing.T) {
	fc := lab.NewFakeContainer(t, lab.FakeContainerOptions{NoState: true})
	pod := startInPod(t, fc, false)
	hostNet := startInPod(t, fc, true)
	roots := netns.Roots{Run: fc.Run}
	want := &bundle.Owner{ContainerID: fc.ID, Runtime: "containerd", Cgroup: unifiedCgroup(t, pod),
		Pod: &bundle.Pod{Name: fc.PodName, UID: fc.PodUID}}
	if diff := cmp.Diff(want, roots.OwnerOf(pod)); diff != "" {
		t.Errorf("OwnerOf, own network namespace (-want +got):\n%s", diff)
	}
	want.Pod.Name = ""
	if diff := cmp.Diff(want, roots.OwnerOf(hostNet)); diff != "" {
		t.Errorf("OwnerOf, host network (-want +got):\n%s", diff)
	}
}
