package netns

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// What a runtime's state file on the host says about one container. Every
// file is read-only, bounded (the limits below) and untrusted: a decoder
// returns an error, never panics, on anything it does not expect.
type stateInfo struct {
	Runtime      string
	Name         string
	Image        string
	PodName      string
	PodNamespace string
	PodUID       string
}

// Limits on the state files read. An OCI config.json is a few tens of
// KiB (its env, mounts and annotations); Docker's config.v2.json
// likewise; containers/storage's containers.json holds every container on
// the host, about 1 KiB each.
const (
	maxConfigBytes     = 4 << 20
	maxContainersBytes = 16 << 20
	maxEnvironBytes    = 1 << 20
	maxCgroupBytes     = 64 << 10
)

// Annotations on an OCI bundle's config.json. containerd's CRI plugin
// writes the io.kubernetes.cri.* set; CRI-O writes io.kubernetes.pod.*,
// io.kubernetes.container.name and its own io.kubernetes.cri-o.* set.
const (
	annCRIContainerType = "io.kubernetes.cri.container-type"
	annCRIContainerName = "io.kubernetes.cri.container-name"
	annCRISandboxName   = "io.kubernetes.cri.sandbox-name"
	annCRISandboxNS     = "io.kubernetes.cri.sandbox-namespace"
	annCRISandboxUID    = "io.kubernetes.cri.sandbox-uid"
	annCRIImageName     = "io.kubernetes.cri.image-name"

	// Also the labels dockershim and cri-dockerd put on a Docker
	// container.
	annPodName       = "io.kubernetes.pod.name"
	annPodNamespace  = "io.kubernetes.pod.namespace"
	annPodUID        = "io.kubernetes.pod.uid"
	annContainerName = "io.kubernetes.container.name"
	annCRIOImageName = "io.kubernetes.cri-o.ImageName"
	annCRIOImage     = "io.kubernetes.cri-o.Image"
	annCRIOType      = "io.kubernetes.cri-o.ContainerType"
	// dockershim's and cri-dockerd's label: "podsandbox" or "container".
	labelDockerType = "io.kubernetes.docker.type"
)

// decodeOCIConfig reads the annotations of an OCI runtime bundle's
// config.json: containerd's (<run>/containerd/io.containerd.runtime.v2.task/
// <namespace>/<ID>/config.json) or CRI-O's (<run>/containers/storage/
// overlay-containers/<ID>/userdata/config.json).
func decodeOCIConfig(b []byte) (stateInfo, error) {
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return stateInfo{}, fmt.Errorf("decode OCI config: %w", err)
	}
	a := spec.Annotations
	var s stateInfo
	switch {
	case a[annCRISandboxUID] != "" || a[annCRISandboxName] != "":
		s.Runtime = RuntimeContainerd
		// The sandbox (pause) container has no container name.
		if a[annCRIContainerType] != "sandbox" {
			s.Name = a[annCRIContainerName]
		}
		s.Image = a[annCRIImageName]
		s.PodName, s.PodNamespace, s.PodUID = a[annCRISandboxName], a[annCRISandboxNS], a[annCRISandboxUID]
	case a[annPodUID] != "" || a[annPodName] != "":
		s.Runtime = RuntimeCRIO
		// CRI-O names the sandbox (infra) container "POD".
		if a[annCRIOType] != "sandbox" {
			s.Name = a[annContainerName]
		}
		s.Image = cmp.Or(a[annCRIOImageName], a[annCRIOImage])
		s.PodName, s.PodNamespace, s.PodUID = a[annPodName], a[annPodNamespace], a[annPodUID]
	}
	return s, nil
}

// decodeDockerConfig reads Docker's <var/lib>/docker/containers/<ID>/
// config.v2.json: the container's name (with Docker's leading slash), its
// image as given to docker run, and its labels, which under Kubernetes
// (dockershim, cri-dockerd) name the pod and the container.
func decodeDockerConfig(b []byte) (stateInfo, error) {
	var c struct {
		Name   string
		Config struct {
			Image  string
			Labels map[string]string
		}
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return stateInfo{}, fmt.Errorf("decode docker config: %w", err)
	}
	l := c.Config.Labels
	s := stateInfo{
		Runtime:      RuntimeDocker,
		Name:         strings.TrimPrefix(c.Name, "/"),
		Image:        c.Config.Image,
		PodName:      l[annPodName],
		PodNamespace: l[annPodNamespace],
		PodUID:       l[annPodUID],
	}
	switch {
	case l[labelDockerType] == "podsandbox":
		s.Name = "" // the pause container, named k8s_POD_...
	case l[annContainerName] != "":
		s.Name = l[annContainerName]
	}
	return s, nil
}

// decodeStorageContainers reads containers/storage's containers.json
// (<var/lib>/containers/storage/overlay-containers/, which Podman and
// CRI-O share): an array of containers, each with its id, names and a
// "metadata" string that is itself JSON. Podman's metadata holds
// image-name and name; CRI-O's also pod-name, namespace, uid (the pod's)
// and metadata-name (the Kubernetes container name; its name is the
// k8s_... one). A container whose metadata does not decode keeps its
// first name.
func decodeStorageContainers(b []byte) (map[string]stateInfo, error) {
	var list []struct {
		ID       string   `json:"id"`
		Names    []string `json:"names"`
		Metadata string   `json:"metadata"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("decode containers/storage list: %w", err)
	}
	out := make(map[string]stateInfo, len(list))
	for _, c := range list {
		var m struct {
			ImageName    string `json:"image-name"`
			Name         string `json:"name"`
			MetadataName string `json:"metadata-name"`
			PodName      string `json:"pod-name"`
			Namespace    string `json:"namespace"`
			UID          string `json:"uid"`
		}
		if c.Metadata != "" {
			_ = json.Unmarshal([]byte(c.Metadata), &m) // a partial decode keeps what it read
		}
		s := stateInfo{Runtime: RuntimePodman, Image: m.ImageName, Name: m.Name}
		if s.Name == "" && len(c.Names) > 0 {
			s.Name = c.Names[0]
		}
		if m.PodName != "" || m.UID != "" {
			s.Runtime = RuntimeCRIO
			s.Name = cmp.Or(m.MetadataName, s.Name)
			s.PodName, s.PodNamespace, s.PodUID = m.PodName, m.Namespace, m.UID
		}
		out[c.ID] = s
	}
	return out, nil
}

// environ is what a process's environment says about its pod.
type environ struct {
	// Hostname is $HOSTNAME: a pod's hostname, which is the pod's name
	// unless the pod sets spec.hostname or runs on the host's network.
	Hostname string
	// Kubernetes is true when $KUBERNETES_SERVICE_HOST is set, which the
	// kubelet puts in every container of every pod (unless the pod turns
	// enableServiceLinks off, which still keeps this one).
	Kubernetes bool
}

// parseEnviron reads /proc/PID/environ: NUL-separated NAME=value pairs.
func parseEnviron(b []byte) environ {
	var e environ
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok {
			continue
		}
		switch string(k) {
		case "HOSTNAME":
			e.Hostname = string(v)
		case "KUBERNETES_SERVICE_HOST":
			e.Kubernetes = len(v) > 0
		}
	}
	return e
}

// stateReader reads the runtimes' state files under a Roots for one
// lookup, reading containers/storage's list (every Podman and CRI-O
// container on the host) at most once.
type stateReader struct {
	r           Roots
	storage     map[string]stateInfo
	storageRead bool
}

func (r Roots) newStateReader() *stateReader { return &stateReader{r: r} }

// lookup gathers what the state files say of cg's container: containerd's
// task bundle, CRI-O's, Docker's config, then containers/storage's list
// when none gave a name. The first to give a field wins.
func (s *stateReader) lookup(cg cgroupOwner) stateInfo {
	var out stateInfo
	merge := func(in stateInfo) {
		out.Runtime = cmp.Or(out.Runtime, in.Runtime)
		out.Name = cmp.Or(out.Name, in.Name)
		out.Image = cmp.Or(out.Image, in.Image)
		out.PodName = cmp.Or(out.PodName, in.PodName)
		out.PodNamespace = cmp.Or(out.PodNamespace, in.PodNamespace)
		out.PodUID = cmp.Or(out.PodUID, in.PodUID)
	}
	merge(s.containerd(cg))
	if b, err := readLimit(filepath.Join(s.r.run(), "containers/storage/overlay-containers", cg.ID, "userdata/config.json"), maxConfigBytes); err == nil {
		if in, err := decodeOCIConfig(b); err == nil {
			merge(in)
		}
	}
	if b, err := readLimit(filepath.Join(s.r.varLib(), "docker/containers", cg.ID, "config.v2.json"), maxConfigBytes); err == nil {
		if in, err := decodeDockerConfig(b); err == nil {
			merge(in)
		}
	}
	if out.Name == "" {
		if !s.storageRead {
			s.storageRead = true
			if b, err := readLimit(filepath.Join(s.r.varLib(), "containers/storage/overlay-containers/containers.json"), maxContainersBytes); err == nil {
				s.storage, _ = decodeStorageContainers(b)
			}
		}
		if in, ok := s.storage[cg.ID]; ok {
			merge(in)
		}
	}
	return out
}

// containerdTasks is where containerd keeps a running task's OCI bundle:
// <run>/containerd/io.containerd.runtime.v2.task/NAMESPACE/ID/.
const containerdTasks = "containerd/io.containerd.runtime.v2.task"

// maxNamespaces bounds the containerd namespaces looked in: a host has a
// handful (k8s.io, moby, default, buildkit).
const maxNamespaces = 32

// containerd reads the task bundle of cg's container: in the namespace
// the cgroup path names first (containerd without Kubernetes puts a
// container at /NAMESPACE/ID with cgroupfs), then in each namespace there
// is. Docker runs its containers as containerd tasks in namespace "moby":
// such a task is Docker's, which its own config names.
func (s *stateReader) containerd(cg cgroupOwner) stateInfo {
	root := filepath.Join(s.r.run(), containerdTasks)
	var nss []string
	if ok := filepath.IsLocal(cg.Parent) && !strings.Contains(cg.Parent, "/"); ok {
		nss = append(nss, cg.Parent)
	}
	if ents, err := os.ReadDir(root); err == nil {
		for _, e := range ents[:min(len(ents), maxNamespaces)] {
			nss = append(nss, e.Name())
		}
	}
	for _, ns := range nss {
		b, err := readLimit(filepath.Join(root, ns, cg.ID, "config.json"), maxConfigBytes)
		if err != nil {
			continue
		}
		in, err := decodeOCIConfig(b)
		if err != nil {
			return stateInfo{}
		}
		if in.Runtime == "" && ns != "moby" {
			in.Runtime = RuntimeContainerd
		}
		return in
	}
	return stateInfo{}
}

// readLimit reads a regular file of at most limit bytes.
func readLimit(path string, limit int64) ([]byte, error) {
	return bundle.ReadFileLimit(os.DirFS(filepath.Dir(path)), filepath.Base(path), limit)
}
