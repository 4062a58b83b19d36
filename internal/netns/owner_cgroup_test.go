package netns

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Container ids and pod uids as the runtimes and the API server make them.
const (
	idA    = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeef"
	idB    = "0c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbccddeeff0"
	podU   = "7d3c2b1a-0f9e-4d8c-b7a6-958473625140"
	podUsd = "7d3c2b1a_0f9e_4d8c_b7a6_958473625140" // the same uid in a systemd slice name
	// A static pod's uid: the hash of its manifest, no dashes.
	staticU = "6f5ec8d1f2f9b2e6a1c3d4e5f6a7b8c9"
)

// TestParseCgroup reads /proc/PID/cgroup files as each runtime and driver
// lays them out on v2, v1 and hybrid hosts.
func TestParseCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       cgroupOwner
	}{{
		name: "docker systemd driver, cgroup v2",
		file: "0::/system.slice/docker-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeDocker, Path: "/system.slice/docker-" + idA + ".scope"},
	}, {
		name: "docker cgroupfs driver, cgroup v1",
		file: "12:pids:/docker/" + idA + "\n11:memory:/docker/" + idA + "\n1:name=systemd:/docker/" + idA + "\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeDocker, Parent: "docker", Path: "/docker/" + idA},
	}, {
		name: "containerd without kubernetes, namespace default",
		file: "0::/default/" + idA + "\n",
		want: cgroupOwner{ID: idA, Parent: "default", Path: "/default/" + idA},
	}, {
		name: "nerdctl, systemd driver",
		file: "0::/system.slice/nerdctl-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, Path: "/system.slice/nerdctl-" + idA + ".scope"},
	}, {
		name: "kubelet systemd driver, containerd, burstable",
		file: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU,
			Path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope"},
	}, {
		name: "kubelet systemd driver, containerd, guaranteed pod (no QoS slice)",
		file: "0::/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU,
			Path: "/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope"},
	}, {
		name: "kubelet systemd driver, cri-o, besteffort, crun's container leaf",
		file: "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUsd + ".slice/crio-" + idA + ".scope/container\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeCRIO, PodUID: podU,
			Path: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUsd + ".slice/crio-" + idA + ".scope/container"},
	}, {
		name: "cri-o conmon is the monitor, not the container",
		file: "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUsd + ".slice/crio-conmon-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeCRIO, PodUID: podU, Monitor: true,
			Path: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUsd + ".slice/crio-conmon-" + idA + ".scope"},
	}, {
		name: "kubelet systemd driver with dockershim",
		file: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUsd + ".slice/docker-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeDocker, PodUID: podU,
			Path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUsd + ".slice/docker-" + idA + ".scope"},
	}, {
		name: "kubelet cgroupfs driver, burstable, cgroup v1",
		file: "11:memory:/kubepods/burstable/pod" + podU + "/" + idA + "\n1:name=systemd:/kubepods/burstable/pod" + podU + "/" + idA + "\n",
		want: cgroupOwner{ID: idA, Parent: "pod" + podU, PodUID: podU, Path: "/kubepods/burstable/pod" + podU + "/" + idA},
	}, {
		name: "kubelet cgroupfs driver, guaranteed static pod",
		file: "0::/kubepods/pod" + staticU + "/" + idA + "\n",
		want: cgroupOwner{ID: idA, Parent: "pod" + staticU, PodUID: staticU, Path: "/kubepods/pod" + staticU + "/" + idA},
	}, {
		name: "kubelet cgroupfs driver, cri-o",
		file: "0::/kubepods/besteffort/pod" + podU + "/crio-" + idA + "\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeCRIO, PodUID: podU, Path: "/kubepods/besteffort/pod" + podU + "/crio-" + idA},
	}, {
		name: "containerd systemd cgroupsPath as a literal v1 directory",
		file: "11:devices:/system.slice/containerd.service/kubepods-burstable-pod" + podUsd + ".slice:cri-containerd:" + idA + "\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU,
			Path: "/system.slice/containerd.service/kubepods-burstable-pod" + podUsd + ".slice:cri-containerd:" + idA},
	}, {
		name: "hybrid host: the unified line wins",
		file: "12:memory:/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idB + ".scope\n" +
			"1:name=systemd:/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idB + ".scope\n" +
			"0::/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU,
			Path: "/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope"},
	}, {
		name: "hybrid host: the unified line names no container",
		file: "12:memory:/docker/" + idA + "\n1:name=systemd:/docker/" + idA + "\n0::/system.slice/containerd.service\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeDocker, Parent: "docker", Path: "/docker/" + idA},
	}, {
		name: "podman root, systemd driver, crun's container leaf",
		file: "0::/machine.slice/libpod-" + idA + ".scope/container\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimePodman, Path: "/machine.slice/libpod-" + idA + ".scope/container"},
	}, {
		name: "podman rootless",
		file: "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimePodman, Path: "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + idA + ".scope"},
	}, {
		name: "podman --cgroups=split in a quadlet unit",
		file: "0::/user.slice/user-1000.slice/user@1000.service/app.slice/redis.service/libpod-payload-" + idA + "\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimePodman, Path: "/user.slice/user-1000.slice/user@1000.service/app.slice/redis.service/libpod-payload-" + idA},
	}, {
		name: "podman conmon",
		file: "0::/machine.slice/libpod-conmon-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimePodman, Monitor: true, Path: "/machine.slice/libpod-conmon-" + idA + ".scope"},
	}, {
		name: "read through a cgroup namespace",
		file: "0::/../../kubepods-besteffort-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU,
			Path: "/../../kubepods-besteffort-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope"},
	}, {
		name: "kind: a pod inside a docker container, the innermost wins",
		file: "0::/system.slice/docker-" + idB + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU,
			Path: "/system.slice/docker-" + idB + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope"},
	}, {
		name: "a rootfs mount unit is not a container",
		file: "0::/system.slice/run-containerd-io.containerd.runtime.v2.task-k8s.io-" + idA + "-rootfs.mount\n",
	}, {
		name: "no pod uid outside kubepods",
		file: "0::/system.slice/app-pod" + podUsd + ".slice/docker-" + idA + ".scope\n",
		want: cgroupOwner{ID: idA, Runtime: RuntimeDocker, Path: "/system.slice/app-pod" + podUsd + ".slice/docker-" + idA + ".scope"},
	}, {
		name: "a host process",
		file: "0::/user.slice/user-1000.slice/session-3.scope\n",
	}, {
		name: "a short id is not a container id",
		file: "0::/docker/" + idA[:12] + "\n",
	}, {
		name: "upper-case hex is not an id a runtime writes",
		file: "0::/docker/" + strings.ToUpper(idA) + "\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, parseCgroup([]byte(tc.file)), cmp.AllowUnexported(cgroupOwner{})); diff != "" {
				t.Errorf("parseCgroup (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseCgroup: any file, no panic, and an id found is a full id that
// the file holds.
func FuzzParseCgroup(f *testing.F) {
	f.Add([]byte("0::/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope\n"))
	f.Add([]byte("11:devices:/system.slice/containerd.service/kubepods-burstable-pod" + podUsd + ".slice:cri-containerd:" + idA + "\n"))
	f.Add([]byte("1:name=systemd:/kubepods/pod" + staticU + "/" + idA + "\n0::/\n"))
	f.Add([]byte("0::/machine.slice/libpod-conmon-" + idA + ".scope\n::::\n:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o := parseCgroup(b)
		if o.ID == "" {
			if o != (cgroupOwner{}) {
				t.Fatalf("no id but %+v", o)
			}
			return
		}
		if !isID(o.ID) || !strings.Contains(string(b), o.ID) || !strings.Contains(string(b), o.Path) {
			t.Fatalf("id %q path %q not from the file", o.ID, o.Path)
		}
		if o.PodUID != "" && !isPodUID(o.PodUID) {
			t.Fatalf("pod uid %q", o.PodUID)
		}
	})
}
