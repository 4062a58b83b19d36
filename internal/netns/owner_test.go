package netns_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/netns"
)

const (
	idA    = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeef"
	idB    = "3f2a0000000000000000000000000000000000000000000000000000000000b0"
	idC    = "c0ffee00000000000000000000000000000000000000000000000000000000c0"
	podU   = "7d3c2b1a-0f9e-4d8c-b7a6-958473625140"
	podUsd = "7d3c2b1a_0f9e_4d8c_b7a6_958473625140"
)

// tree is a fake host: proc, run and var/lib under one directory, each
// file laid out where the kernel or the runtime puts it.
type tree map[string]string

// write lays the tree out and returns its roots. A value starting with
// "->" is a symlink (a /proc/PID/ns/net file).
func (tr tree) write(t *testing.T) netns.Roots {
	t.Helper()
	root := t.TempDir()
	for name, content := range tr {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(filepath.Join(root, target), p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return netns.Roots{Proc: filepath.Join(root, "proc"), Run: filepath.Join(root, "run"), VarLib: filepath.Join(root, "varlib")}
}

func env(kv ...string) string { return strings.Join(kv, "\x00") + "\x00" }

var podEnv = env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=web-7d9f8c6b5-x2x4q",
	"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", "HOME=/root")

const (
	k8sContainerdCgroup = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope\n"
	containerdTask      = "run/containerd/io.containerd.runtime.v2.task/"
	// containerd's CRI plugin's annotations on a container's bundle.
	k8sContainerdConfig = `{"ociVersion":"1.2.0","process":{"env":["HOSTNAME=web-7d9f8c6b5-x2x4q"]},"annotations":{
		"io.kubernetes.cri.container-name":"nginx","io.kubernetes.cri.container-type":"container",
		"io.kubernetes.cri.image-name":"docker.io/library/nginx:1.27","io.kubernetes.cri.sandbox-id":"` + idC + `",
		"io.kubernetes.cri.sandbox-name":"web-7d9f8c6b5-x2x4q","io.kubernetes.cri.sandbox-namespace":"shop",
		"io.kubernetes.cri.sandbox-uid":"` + podU + `"}}`
	// CRI-O's annotations on a container's bundle.
	crioConfig = `{"ociVersion":"1.0.2-dev","annotations":{"io.container.manager":"cri-o",
		"io.kubernetes.container.name":"nginx","io.kubernetes.cri-o.ContainerType":"container",
		"io.kubernetes.cri-o.ImageName":"docker.io/library/nginx:1.27","io.kubernetes.cri-o.Image":"sha256:aa",
		"io.kubernetes.pod.name":"web-7d9f8c6b5-x2x4q","io.kubernetes.pod.namespace":"shop",
		"io.kubernetes.pod.uid":"` + podU + `","io.kubernetes.cri-o.Labels":"{}"}}`
	crioCgroup = "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUsd + ".slice/crio-" + idA + ".scope/container\n"
	// Docker's config.v2.json, cut to the fields read and a few beside.
	dockerConfig = `{"StreamConfig":{},"State":{"Running":true,"Pid":4242},"ID":"` + idA + `",
		"Name":"/web","Config":{"Hostname":"3f2a9c1b7d4e","Image":"nginx:1.27","Labels":{"maintainer":"NGINX"}}}`
	dockershimConfig = `{"ID":"` + idA + `","Name":"/k8s_nginx_web-7d9f8c6b5-x2x4q_shop_` + podU + `_0",
		"Config":{"Image":"sha256:aa","Labels":{"io.kubernetes.container.name":"nginx",
		"io.kubernetes.pod.name":"web-7d9f8c6b5-x2x4q","io.kubernetes.pod.namespace":"shop","io.kubernetes.pod.uid":"` + podU + `"}}}`
	// containers/storage's list, with one Podman container and one other.
	podmanContainers = `[{"id":"` + idC + `","names":["other"],"metadata":"{}"},
		{"id":"` + idA + `","names":["web"],"image":"5b0b","layer":"9f1c",
		"metadata":"{\"image-name\":\"docker.io/library/nginx:1.27\",\"image-id\":\"5b0b\",\"name\":\"web\",\"created-at\":1733400000}",
		"created":"2026-12-05T10:00:00Z","flags":{"MountLabel":""}}]`
)

var nginxPod = &bundle.Pod{Name: "web-7d9f8c6b5-x2x4q", Namespace: "shop", UID: podU}

// TestOwnerOf reads the owner of a process from fake hosts laid out as
// each runtime lays its containers out.
func TestOwnerOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		tree tree
		want *bundle.Owner
	}{{
		name: "kubernetes and containerd",
		tree: tree{"proc/42/cgroup": k8sContainerdCgroup, "proc/42/environ": podEnv,
			containerdTask + "k8s.io/" + idA + "/config.json": k8sContainerdConfig},
		want: &bundle.Owner{ContainerID: idA, Runtime: "containerd", Name: "nginx", Image: "docker.io/library/nginx:1.27",
			Cgroup: strings.TrimSpace(k8sContainerdCgroup[3:]), Pod: nginxPod},
	}, {
		name: "kubernetes and containerd, no state files: the environment names the pod",
		tree: tree{"proc/42/cgroup": k8sContainerdCgroup, "proc/42/environ": podEnv},
		want: &bundle.Owner{ContainerID: idA, Runtime: "containerd", Cgroup: strings.TrimSpace(k8sContainerdCgroup[3:]),
			Pod: &bundle.Pod{Name: "web-7d9f8c6b5-x2x4q", UID: podU}},
	}, {
		name: "a hostNetwork pod's HOSTNAME is the node's",
		tree: tree{"proc/42/cgroup": k8sContainerdCgroup, "proc/42/environ": podEnv,
			"hostns": "", "proc/1/ns/net": "->hostns", "proc/42/ns/net": "->hostns"},
		want: &bundle.Owner{ContainerID: idA, Runtime: "containerd", Cgroup: strings.TrimSpace(k8sContainerdCgroup[3:]),
			Pod: &bundle.Pod{UID: podU}},
	}, {
		name: "cri-o",
		tree: tree{"proc/42/cgroup": crioCgroup, "proc/42/environ": podEnv,
			"run/containers/storage/overlay-containers/" + idA + "/userdata/config.json": crioConfig},
		want: &bundle.Owner{ContainerID: idA, Runtime: "cri-o", Name: "nginx", Image: "docker.io/library/nginx:1.27",
			Cgroup: strings.TrimSpace(crioCgroup[3:]), Pod: nginxPod},
	}, {
		name: "cri-o's conmon is in no container",
		tree: tree{"proc/42/cgroup": "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUsd + ".slice/crio-conmon-" + idA + ".scope\n",
			"run/containers/storage/overlay-containers/" + idA + "/userdata/config.json": crioConfig},
	}, {
		name: "docker, with its containerd task in namespace moby",
		tree: tree{"proc/42/cgroup": "0::/system.slice/docker-" + idA + ".scope\n",
			containerdTask + "moby/" + idA + "/config.json":       `{"ociVersion":"1.2.0","hostname":"3f2a9c1b7d4e"}`,
			"varlib/docker/containers/" + idA + "/config.v2.json": dockerConfig},
		want: &bundle.Owner{ContainerID: idA, Runtime: "docker", Name: "web", Image: "nginx:1.27", Cgroup: "/system.slice/docker-" + idA + ".scope"},
	}, {
		name: "docker under the kubelet's cgroupfs driver (dockershim)",
		tree: tree{"proc/42/cgroup": "12:memory:/kubepods/burstable/pod" + podU + "/" + idA + "\n1:name=systemd:/kubepods/burstable/pod" + podU + "/" + idA + "\n",
			"varlib/docker/containers/" + idA + "/config.v2.json": dockershimConfig},
		want: &bundle.Owner{ContainerID: idA, Runtime: "docker", Name: "nginx", Image: "sha256:aa",
			Cgroup: "/kubepods/burstable/pod" + podU + "/" + idA, Pod: nginxPod},
	}, {
		name: "cri-o's sandbox (infra) container has no container name",
		tree: tree{"proc/42/cgroup": crioCgroup,
			"run/containers/storage/overlay-containers/" + idA + "/userdata/config.json": strings.Replace(crioConfig,
				`"io.kubernetes.cri-o.ContainerType":"container"`, `"io.kubernetes.cri-o.ContainerType":"sandbox"`, 1)},
		want: &bundle.Owner{ContainerID: idA, Runtime: "cri-o", Image: "docker.io/library/nginx:1.27",
			Cgroup: strings.TrimSpace(crioCgroup[3:]), Pod: nginxPod},
	}, {
		name: "dockershim's pod sandbox has no container name",
		tree: tree{"proc/42/cgroup": "0::/kubepods/burstable/pod" + podU + "/" + idA + "\n",
			"varlib/docker/containers/" + idA + "/config.v2.json": strings.Replace(dockershimConfig,
				`"io.kubernetes.container.name":"nginx"`, `"io.kubernetes.container.name":"POD","io.kubernetes.docker.type":"podsandbox"`, 1)},
		want: &bundle.Owner{ContainerID: idA, Runtime: "docker", Image: "sha256:aa",
			Cgroup: "/kubepods/burstable/pod" + podU + "/" + idA, Pod: nginxPod},
	}, {
		name: "containerd without kubernetes (ctr run), namespace default",
		tree: tree{"proc/42/cgroup": "0::/default/" + idA + "\n",
			containerdTask + "default/" + idA + "/config.json": `{"ociVersion":"1.2.0"}`},
		want: &bundle.Owner{ContainerID: idA, Runtime: "containerd", Cgroup: "/default/" + idA},
	}, {
		name: "podman",
		tree: tree{"proc/42/cgroup": "0::/machine.slice/libpod-" + idA + ".scope/container\n",
			"varlib/containers/storage/overlay-containers/containers.json": podmanContainers},
		want: &bundle.Owner{ContainerID: idA, Runtime: "podman", Name: "web", Image: "docker.io/library/nginx:1.27",
			Cgroup: "/machine.slice/libpod-" + idA + ".scope/container"},
	}, {
		name: "hostile state files are ignored",
		tree: tree{"proc/42/cgroup": k8sContainerdCgroup, "proc/42/environ": "\x00\x00==\x00HOSTNAME",
			containerdTask + "k8s.io/" + idA + "/config.json":              `{"annotations":[1,2]`,
			"varlib/docker/containers/" + idA + "/config.v2.json":          "\xff\xfe",
			"varlib/containers/storage/overlay-containers/containers.json": `{}`},
		want: &bundle.Owner{ContainerID: idA, Runtime: "containerd", Cgroup: strings.TrimSpace(k8sContainerdCgroup[3:]),
			Pod: &bundle.Pod{UID: podU}},
	}, {
		name: "a host process",
		tree: tree{"proc/42/cgroup": "0::/user.slice/user-1000.slice/session-3.scope\n", "proc/42/environ": podEnv},
	}, {
		name: "a process that is gone",
		tree: tree{"proc/1/cgroup": "0::/init.scope\n"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.tree.write(t).OwnerOf(42)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("OwnerOf (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFindContainer finds a container by id, prefix and name among a
// node's processes, and says what an ambiguous one matches.
func TestFindContainer(t *testing.T) {
	r := tree{
		// CRI-O's conmon has the lowest pid but is not in the container.
		"proc/10/cgroup": "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUsd + ".slice/crio-conmon-" + idA + ".scope\n",
		"proc/42/cgroup": crioCgroup,
		"proc/43/cgroup": crioCgroup,
		"run/containers/storage/overlay-containers/" + idA + "/userdata/config.json": crioConfig,
		"proc/50/cgroup": "0::/system.slice/docker-" + idB + ".scope\n",
		"varlib/docker/containers/" + idB + "/config.v2.json": dockerConfig, // also named web... by Docker
		"proc/60/cgroup": "0::/system.slice/docker-" + idC + ".scope\n",
		"varlib/docker/containers/" + idC + "/config.v2.json": `{"Name":"/nginx","Config":{"Image":"nginx"}}`,
		"proc/70/cgroup": "0::/user.slice/user-1000.slice/session-3.scope\n",
		"proc/self":      "not a pid",
	}.write(t)
	for _, tc := range []struct {
		ref     string
		pid     int
		matches []string // for an ambiguous ref: the ids it names
	}{
		{ref: idA, pid: 42},
		{ref: idA[:12], pid: 42},
		{ref: strings.ToUpper(idC[:6]), pid: 60},
		{ref: "3f2a", matches: []string{idB, idA}},
		{ref: "web", pid: 50},
		{ref: "web-7d9f8c6b5-x2x4q/nginx", pid: 42},
		{ref: "shop/web-7d9f8c6b5-x2x4q/nginx", pid: 42},
		{ref: "nginx", matches: []string{idA, idC}},
		{ref: "3f2", pid: 0},
		{ref: "ghost", pid: 0},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			pid, err := r.FindContainer(tc.ref)
			var amb *netns.AmbiguousError
			switch {
			case tc.matches != nil:
				if !errors.As(err, &amb) {
					t.Fatalf("FindContainer(%q) = %d, %v; want an ambiguity", tc.ref, pid, err)
				}
				if diff := cmp.Diff(tc.matches, amb.IDs); diff != "" {
					t.Errorf("FindContainer(%q) matches (-want +got):\n%s", tc.ref, diff)
				}
			case tc.pid == 0:
				if !errors.Is(err, netns.ErrNoContainer) {
					t.Fatalf("FindContainer(%q) = %d, %v; want ErrNoContainer", tc.ref, pid, err)
				}
			case err != nil || pid != tc.pid:
				t.Fatalf("FindContainer(%q) = %d, %v; want %d", tc.ref, pid, err, tc.pid)
			}
		})
	}
	if pid, err := r.FindContainer(" "); err == nil {
		t.Errorf("FindContainer(\" \") = %d, want an error", pid)
	}
}

// TestNamespaceOwner: a pod's namespace is named by its container, not by
// its sandbox (pause) container, whatever their pids.
func TestNamespaceOwner(t *testing.T) {
	sandbox := `{"annotations":{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-name":"web-7d9f8c6b5-x2x4q",
		"io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"` + podU + `"}}`
	pauseCgroup := "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUsd + ".slice/cri-containerd-" + idC + ".scope\n"
	r := tree{
		"proc/10/cgroup": pauseCgroup,
		containerdTask + "k8s.io/" + idC + "/config.json": sandbox,
		"proc/42/cgroup": k8sContainerdCgroup,
		containerdTask + "k8s.io/" + idA + "/config.json": k8sContainerdConfig,
		"proc/50/cgroup": "0::/user.slice/user-1000.slice/session-3.scope\n",
	}.write(t)
	for _, tc := range []struct {
		pids []int
		want *bundle.Owner
	}{
		{[]int{50, 42, 10}, &bundle.Owner{ContainerID: idA, Runtime: "containerd", Name: "nginx", Image: "docker.io/library/nginx:1.27",
			Cgroup: strings.TrimSpace(k8sContainerdCgroup[3:]), Pod: nginxPod}},
		{[]int{10}, &bundle.Owner{ContainerID: idC, Runtime: "containerd", Cgroup: strings.TrimSpace(pauseCgroup[3:]), Pod: nginxPod}},
		{[]int{50}, nil},
	} {
		if diff := cmp.Diff(tc.want, r.NamespaceOwner(tc.pids)); diff != "" {
			t.Errorf("NamespaceOwner(%v) (-want +got):\n%s", tc.pids, diff)
		}
	}
}
