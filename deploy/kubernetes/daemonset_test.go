// Package kubernetes holds the node agent's Kubernetes manifests; its test
// decodes them and checks the security settings the README promises.
package kubernetes

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// The parts of the Kubernetes API objects the manifest uses, named as the
// API names them. Decoding with KnownFields refuses a field that is not
// here, so a misspelt field (readOnlyRootFileSystem) fails the test rather
// than being silently dropped by the API server's older versions.
type (
	object struct {
		APIVersion                   string   `yaml:"apiVersion"`
		Kind                         string   `yaml:"kind"`
		Metadata                     metadata `yaml:"metadata"`
		AutomountServiceAccountToken *bool    `yaml:"automountServiceAccountToken"`
		Spec                         *dsSpec  `yaml:"spec"`
	}
	metadata struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	}
	dsSpec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		UpdateStrategy struct {
			Type          string `yaml:"type"`
			RollingUpdate struct {
				MaxUnavailable string `yaml:"maxUnavailable"`
			} `yaml:"rollingUpdate"`
		} `yaml:"updateStrategy"`
		Template struct {
			Metadata metadata `yaml:"metadata"`
			Spec     podSpec  `yaml:"spec"`
		} `yaml:"template"`
	}
	podSpec struct {
		ServiceAccountName            string            `yaml:"serviceAccountName"`
		AutomountServiceAccountToken  *bool             `yaml:"automountServiceAccountToken"`
		HostPID                       *bool             `yaml:"hostPID"`
		HostNetwork                   *bool             `yaml:"hostNetwork"`
		NodeSelector                  map[string]string `yaml:"nodeSelector"`
		Tolerations                   []map[string]string
		TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			SeccompProfile profile `yaml:"seccompProfile"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []volume    `yaml:"volumes"`
	}
	profile struct {
		Type string `yaml:"type"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			ValueFrom struct {
				ResourceFieldRef struct {
					Resource string `yaml:"resource"`
				} `yaml:"resourceFieldRef"`
				FieldRef struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			Privileged               *bool   `yaml:"privileged"`
			AllowPrivilegeEscalation *bool   `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool   `yaml:"readOnlyRootFilesystem"`
			RunAsUser                *int    `yaml:"runAsUser"`
			RunAsNonRoot             *bool   `yaml:"runAsNonRoot"`
			AppArmorProfile          profile `yaml:"appArmorProfile"`
			Capabilities             struct {
				Drop []string  `yaml:"drop"`
				Add  yaml.Node `yaml:"add"` // a node: each capability's comment is checked
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name             string `yaml:"name"`
			MountPath        string `yaml:"mountPath"`
			ReadOnly         bool   `yaml:"readOnly"`
			MountPropagation string `yaml:"mountPropagation"`
		} `yaml:"volumeMounts"`
	}
	volume struct {
		Name     string `yaml:"name"`
		HostPath *struct {
			Path string `yaml:"path"`
			Type string `yaml:"type"`
		} `yaml:"hostPath"`
		EmptyDir *struct {
			Medium    string `yaml:"medium"`
			SizeLimit string `yaml:"sizeLimit"`
		} `yaml:"emptyDir"`
	}
)

// decode reads every document of a manifest file strictly.
func decode(t *testing.T, path string) []object {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var objs []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decode %s, document %d: %v", path, len(objs)+1, err)
		}
		objs = append(objs, o)
	}
}

// TestDaemonSet checks what the node agent's manifest promises: the host's
// processes but not its network, no privileged mode, exactly the
// capabilities it needs each with the reason beside it, a read-only root,
// the runtimes' state read-only at the paths snapdiag reads by default, a
// memory limit, and a pod on every node.
func TestDaemonSet(t *testing.T) {
	objs := decode(t, "daemonset.yaml")
	var ds *object
	for i := range objs {
		if objs[i].Kind == "DaemonSet" {
			ds = &objs[i]
		}
	}
	if ds == nil || ds.APIVersion != "apps/v1" || ds.Spec == nil {
		t.Fatalf("no apps/v1 DaemonSet among %d documents", len(objs))
	}
	pod := ds.Spec.Template.Spec
	isTrue := func(b *bool) bool { return b != nil && *b }
	isFalse := func(b *bool) bool { return b != nil && !*b }
	show := func(bs ...*bool) (out []string) {
		for _, b := range bs {
			if b == nil {
				out = append(out, "unset")
			} else {
				out = append(out, strconv.FormatBool(*b))
			}
		}
		return out
	}
	if !isTrue(pod.HostPID) || !isFalse(pod.HostNetwork) || !isFalse(pod.AutomountServiceAccountToken) {
		t.Errorf("hostPID, hostNetwork, automountServiceAccountToken: %v, want true, false, false",
			show(pod.HostPID, pod.HostNetwork, pod.AutomountServiceAccountToken))
	}
	if diff := cmp.Diff(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Metadata.Labels); diff != "" {
		t.Errorf("the selector does not select the pods (-selector +labels):\n%s", diff)
	}
	if len(pod.Tolerations) == 0 || pod.Tolerations[0]["operator"] != "Exists" {
		t.Errorf("tolerations %v: the agent must run on tainted nodes too", pod.Tolerations)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Args) < 2 || c.Args[0] != "watch" || !slices.Contains(c.Args, "--all-netns") {
		t.Errorf("args %q: want watch --all-netns", c.Args)
	}
	// Bundles carry the node's name, not the agent pod's, which changes
	// with each restart of the agent.
	nodeName := false
	for _, e := range c.Env {
		if e.Name == "SNAPDIAG_HOSTNAME" && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeName = true
		}
	}
	if !nodeName {
		t.Error("env: want SNAPDIAG_HOSTNAME from the downward API's spec.nodeName")
	}

	sc := c.SecurityContext
	if !isFalse(sc.Privileged) || !isFalse(sc.AllowPrivilegeEscalation) || !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Errorf("privileged, allowPrivilegeEscalation, readOnlyRootFilesystem: %v, want false, false, true",
			show(sc.Privileged, sc.AllowPrivilegeEscalation, sc.ReadOnlyRootFilesystem))
	}
	if diff := cmp.Diff([]string{"ALL"}, sc.Capabilities.Drop); diff != "" {
		t.Errorf("capabilities dropped (-want +got):\n%s", diff)
	}
	var caps []string
	for _, n := range sc.Capabilities.Add.Content {
		caps = append(caps, n.Value)
		if strings.TrimSpace(n.HeadComment) == "" {
			t.Errorf("capability %s has no comment saying why", n.Value)
		}
	}
	want := []string{"SYS_ADMIN", "SYS_PTRACE", "NET_ADMIN", "NET_RAW", "DAC_READ_SEARCH", "SYS_NICE"}
	if diff := cmp.Diff(want, caps); diff != "" {
		t.Errorf("capabilities added (-want +got):\n%s", diff)
	}

	if c.Resources.Limits["memory"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Requests["cpu"] == "" {
		t.Errorf("resources %+v: want memory and cpu requests and a memory limit", c.Resources)
	}
	if cpu, ok := c.Resources.Limits["cpu"]; ok {
		t.Errorf("cpu limit %s: a throttled capture misses its deadline", cpu)
	}

	// Every host path is mounted where it is on the host (snapdiag reads
	// /run and /var/lib by default), read-only but for the bundles.
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		p, ok := hostPaths[m.Name]
		if !ok {
			continue
		}
		mounted[p] = true
		if m.MountPath != p {
			t.Errorf("host path %s mounted at %s", p, m.MountPath)
		}
		if m.ReadOnly != (p != "/var/lib/snapdiag") {
			t.Errorf("host path %s: readOnly %v", p, m.ReadOnly)
		}
		if p == "/run/netns" && m.MountPropagation != "HostToContainer" {
			t.Errorf("/run/netns propagation %q: a namespace named after the start would be missed", m.MountPropagation)
		}
	}
	for _, p := range []string{"/var/lib/snapdiag", "/run/netns", "/run/containerd/io.containerd.runtime.v2.task"} {
		if !mounted[p] {
			t.Errorf("host path %s is not mounted", p)
		}
	}
}
