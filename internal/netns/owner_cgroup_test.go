package netns

import (
	"cmp"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
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
		name string
		// file is the /proc/PID/cgroup file, "0::path\n" when empty;
		// path is the cgroup path the id is found in.
		file, path string
		want       cgroupOwner
	}{{
		name: "docker systemd driver, cgroup v2",
		path: "/system.slice/docker-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimeDocker},
	}, {
		name: "docker cgroupfs driver, cgroup v1",
		file: "12:pids:/docker/" + idA + "\n11:memory:/docker/" + idA + "\n1:name=systemd:/docker/" + idA + "\n",
		path: "/docker/" + idA,
		want: cgroupOwner{ID: idA, Runtime: RuntimeDocker, Parent: "docker"},
	}, {
		name: "containerd without kubernetes, namespace default",
		path: "/default/" + idA,
		want: cgroupOwner{ID: idA, Parent: "default"},
	}, {
		name: "nerdctl, systemd driver",
		path: "/system.slice/nerdctl-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd},
	}, {
		name: "kubelet systemd driver, containerd, burstable",
		path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU},
	}, {
		name: "kubelet systemd driver, containerd, guaranteed pod (no QoS slice)",
		path: "/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU},
	}, {
		name: "kubelet systemd driver, cri-o, besteffort, crun's container leaf",
		path: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUsd + ".slice/crio-" + idA + ".scope/container",
		want: cgroupOwner{ID: idA, Runtime: RuntimeCRIO, PodUID: podU},
	}, {
		name: "cri-o conmon is the monitor, not the container",
		path: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUsd + ".slice/crio-conmon-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimeCRIO, PodUID: podU, Monitor: true},
	}, {
		name: "kubelet systemd driver with dockershim",
		path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUsd + ".slice/docker-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimeDocker, PodUID: podU},
	}, {
		name: "kubelet cgroupfs driver, burstable, cgroup v1",
		file: "11:memory:/kubepods/burstable/pod" + podU + "/" + idA + "\n1:name=systemd:/kubepods/burstable/pod" + podU + "/" + idA + "\n",
		path: "/kubepods/burstable/pod" + podU + "/" + idA,
		want: cgroupOwner{ID: idA, Parent: "pod" + podU, PodUID: podU},
	}, {
		name: "kubelet cgroupfs driver, guaranteed static pod",
		path: "/kubepods/pod" + staticU + "/" + idA,
		want: cgroupOwner{ID: idA, Parent: "pod" + staticU, PodUID: staticU},
	}, {
		name: "kubelet cgroupfs driver, cri-o",
		path: "/kubepods/besteffort/pod" + podU + "/crio-" + idA,
		want: cgroupOwner{ID: idA, Runtime: RuntimeCRIO, PodUID: podU},
	}, {
		name: "containerd systemd cgroupsPath as a literal v1 directory",
		file: "11:devices:/system.slice/containerd.service/kubepods-burstable-pod" + podUsd + ".slice:cri-containerd:" + idA + "\n",
		path: "/system.slice/containerd.service/kubepods-burstable-pod" + podUsd + ".slice:cri-containerd:" + idA,
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU},
	}, {
		name: "hybrid host: the unified line wins",
		file: "12:memory:/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idB + ".scope\n" +
			"1:name=systemd:/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idB + ".scope\n" +
			"0::/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope\n",
		path: "/kubepods.slice/kubepods-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU},
	}, {
		name: "hybrid host: the unified line names no container",
		file: "12:memory:/docker/" + idA + "\n1:name=systemd:/docker/" + idA + "\n0::/system.slice/containerd.service\n",
		path: "/docker/" + idA,
		want: cgroupOwner{ID: idA, Runtime: RuntimeDocker, Parent: "docker"},
	}, {
		name: "podman root, systemd driver, crun's container leaf",
		path: "/machine.slice/libpod-" + idA + ".scope/container",
		want: cgroupOwner{ID: idA, Runtime: RuntimePodman},
	}, {
		name: "podman rootless",
		path: "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimePodman},
	}, {
		name: "podman --cgroups=split in a quadlet unit",
		path: "/user.slice/user-1000.slice/user@1000.service/app.slice/redis.service/libpod-payload-" + idA,
		want: cgroupOwner{ID: idA, Runtime: RuntimePodman},
	}, {
		name: "podman conmon",
		path: "/machine.slice/libpod-conmon-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimePodman, Monitor: true},
	}, {
		name: "read through a cgroup namespace",
		path: "/../../kubepods-besteffort-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU},
	}, {
		name: "kind: a pod inside a docker container, the innermost wins",
		path: "/system.slice/docker-" + idB + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + podUsd + ".slice/cri-containerd-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimeContainerd, PodUID: podU},
	}, {
		name: "a rootfs mount unit is not a container",
		path: "/system.slice/run-containerd-io.containerd.runtime.v2.task-k8s.io-" + idA + "-rootfs.mount",
	}, {
		name: "no pod uid outside kubepods",
		path: "/system.slice/app-pod" + podUsd + ".slice/docker-" + idA + ".scope",
		want: cgroupOwner{ID: idA, Runtime: RuntimeDocker},
	}, {
		name: "a host process",
		path: "/user.slice/user-1000.slice/session-3.scope",
	}, {
		name: "a short id is not a container id",
		path: "/docker/" + idA[:12],
	}, {
		name: "upper-case hex is not an id a runtime writes",
		path: "/docker/" + strings.ToUpper(idA),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			file := cmp.Or(tc.file, "0::"+tc.path+"\n")
			if tc.want.ID != "" {
				tc.want.Path = tc.path
			}
			if diff := gocmp.Diff(tc.want, parseCgroup([]byte(file))); diff != "" {
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
