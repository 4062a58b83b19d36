package lab

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/snapdiag/snapdiag/internal/netns"
	"golang.org/x/sys/unix"
)

// FakeContainerOptions describe the Kubernetes container a FakeContainer
// pretends a process is in. Empty fields take the defaults shown.
type FakeContainerOptions struct {
	Name         string // the container's name, "app"
	Image        string // "registry.example/app:1.0"
	PodName      string // "app-7d9f8c6b5-x2x4q"
	PodNamespace string // "default"
	// NoState leaves out containerd's task bundle, so that only the cgroup
	// path and the environment say who the container is.
	NoState bool
	// Run is the fake host /run to write containerd's task bundle in;
	// empty, a new one. Containers that one snapdiag must name all share
	// one (it reads a single $SNAPDIAG_HOST_RUN).
	Run string
}

// FakeContainer makes processes look, to anything that reads /proc and
// the runtimes' state files, like a container of a Kubernetes pod run by
// the kubelet (systemd cgroup driver, Burstable QoS) and containerd: a real
// cgroup named as they name it, containerd's task bundle with the CRI
// annotations in a state tree of its own (Run), and a pod's environment
// (Env) for the processes the test starts.
type FakeContainer struct {
	// ID is the container's id, 64 hex digits.
	ID string
	// PodUID is the pod's uid, a UUID.
	PodUID string
	// Name, Image, PodName and PodNamespace are the options, defaulted.
	Name, Image, PodName, PodNamespace string
	// Run is the fake host /run that holds containerd's task bundle:
	// pass it as netns.Roots.Run, or to the snapdiag binary in
	// RunEnv().
	Run string
	// Dir is the container's cgroup directory in the cgroup2 mount.
	Dir string

	tb   TB
	home string // the cgroup2 path processes go back to, in the mount
}

var fakeSeq atomic.Int64

// NewFakeContainer creates the cgroup and the state tree of a fake
// Kubernetes container, and removes them when tb ends (after moving any
// process still in the cgroup back to the test's own). It skips tb when not
// root or when no cgroup2 hierarchy is mounted writable. The cgroup is made
// under a directory of its own at the top of the cgroup2 mount
// (snapdiag-fake-PID-N/kubepods.slice/kubepods-burstable.slice/
// kubepods-burstable-podUID.slice/cri-containerd-ID.scope), so a real
// kubelet's tree is never touched.
func NewFakeContainer(tb TB, opts FakeContainerOptions) *FakeContainer {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("lab: a fake container needs root to create a cgroup")
	}
	mnt, err := cgroup2Mount()
	if err != nil {
		tb.Skipf("lab: a fake container needs a cgroup2 hierarchy: %v", err)
	}
	fc := &FakeContainer{
		ID:           randomHex(32),
		PodUID:       uuid(),
		Name:         cmp.Or(opts.Name, "app"),
		Image:        cmp.Or(opts.Image, "registry.example/app:1.0"),
		PodName:      cmp.Or(opts.PodName, "app-7d9f8c6b5-x2x4q"),
		PodNamespace: cmp.Or(opts.PodNamespace, "default"),
		Run:          cmp.Or(opts.Run, filepath.Join(tb.TempDir(), "run")),
		tb:           tb,
	}
	top := filepath.Join(mnt, fmt.Sprintf("snapdiag-fake-%d-%d", os.Getpid(), fakeSeq.Add(1)))
	uidSlice := strings.ReplaceAll(fc.PodUID, "-", "_")
	fc.Dir = filepath.Join(top, "kubepods.slice", "kubepods-burstable.slice",
		"kubepods-burstable-pod"+uidSlice+".slice", "cri-containerd-"+fc.ID+".scope")
	if err := os.Mkdir(top, 0o755); err != nil {
		tb.Skipf("lab: a fake container needs a writable cgroup2 hierarchy: %v", err)
	}
	tb.Cleanup(func() { fc.remove(top) })
	if err := os.MkdirAll(fc.Dir, 0o755); err != nil {
		tb.Fatalf("lab: fake container cgroup: %v", err)
	}
	fc.home = filepath.Join(mnt, ownCgroup())
	if !opts.NoState {
		if err := fc.writeState(); err != nil {
			tb.Fatalf("lab: fake container state: %v", err)
		}
	}
	return fc
}

// Env is the environment the kubelet gives a pod's containers, as far as
// finding the pod goes: $HOSTNAME is the pod's name and
// $KUBERNETES_SERVICE_HOST is set. Append it to the environment of the
// processes to put in the container.
func (fc *FakeContainer) Env() []string {
	return []string{
		"HOSTNAME=" + fc.PodName,
		"KUBERNETES_SERVICE_HOST=10.96.0.1",
		"KUBERNETES_SERVICE_PORT=443",
	}
}

// RunEnv points a snapdiag binary at the fake state tree (Run).
func (fc *FakeContainer) RunEnv() []string {
	return []string{netns.EnvHostRun + "=" + fc.Run}
}

// Add moves process pid into the container's cgroup, as a runtime starts
// a container's process (again, after a restart); it fails tb if it
// cannot.
func (fc *FakeContainer) Add(pid int) {
	fc.tb.Helper()
	if err := fc.Adopt(pid); err != nil {
		fc.tb.Fatalf("lab: %v", err)
	}
}

// Adopt moves process pid into the container's cgroup.
func (fc *FakeContainer) Adopt(pid int) error {
	if err := os.WriteFile(filepath.Join(fc.Dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("move pid %d into %s: %w", pid, fc.Dir, err)
	}
	return nil
}

// Release moves every process in the container's cgroup back to the
// test's own cgroup.
func (fc *FakeContainer) Release() error {
	b, err := os.ReadFile(filepath.Join(fc.Dir, "cgroup.procs"))
	if err != nil {
		return fmt.Errorf("read %s: %w", fc.Dir, err)
	}
	var errs []error
	for f := range strings.FieldsSeq(string(b)) {
		// A process that exited since the read is gone: ESRCH.
		if err := os.WriteFile(filepath.Join(fc.home, "cgroup.procs"), []byte(f), 0); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("move pid %s back to %s: %w", f, fc.home, err))
		}
	}
	return errors.Join(errs...)
}

// remove releases the processes and removes the cgroups, innermost first.
func (fc *FakeContainer) remove(top string) {
	if _, err := os.Stat(fc.Dir); err == nil {
		if err := fc.Release(); err != nil {
			fc.tb.Errorf("lab: fake container: %v", err)
		}
		// A process that was exiting as it was listed stays in the
		// cgroup until whoever started it reaps it, and rmdir is EBUSY
		// until cgroup.events says "populated 0".
		err := WaitFor(nil, DefaultExecTimeout, pollEvery, "fake container cgroup to empty", func() (bool, string, error) {
			ev, err := os.ReadFile(filepath.Join(fc.Dir, "cgroup.events"))
			return err != nil || strings.Contains(string(ev), "populated 0"), string(ev), nil
		})
		if err != nil {
			fc.tb.Errorf("lab: fake container: %v", err)
		}
	}
	for d := fc.Dir; ; d = filepath.Dir(d) {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			fc.tb.Errorf("lab: remove fake container cgroup: %v", err)
		}
		if d == top || len(d) <= len(top) {
			return
		}
	}
}

// writeState writes the task bundle's config.json as containerd's CRI
// plugin does, with the annotations that name the container and its pod
// (the rest of the OCI spec is left out).
func (fc *FakeContainer) writeState() error {
	dir := filepath.Join(fc.Run, "containerd/io.containerd.runtime.v2.task/k8s.io", fc.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	spec := map[string]any{
		"ociVersion": "1.2.0",
		"annotations": map[string]string{
			"io.kubernetes.cri.container-type":    "container",
			"io.kubernetes.cri.container-name":    fc.Name,
			"io.kubernetes.cri.image-name":        fc.Image,
			"io.kubernetes.cri.sandbox-id":        randomHex(32),
			"io.kubernetes.cri.sandbox-name":      fc.PodName,
			"io.kubernetes.cri.sandbox-namespace": fc.PodNamespace,
			"io.kubernetes.cri.sandbox-uid":       fc.PodUID,
		},
	}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

// cgroup2Mount finds where the cgroup2 hierarchy is mounted
// (/sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid
// one) from /proc/self/mountinfo, whose fields after " - " are the
// filesystem type and source, the mount point being the fifth field.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		pre, post, ok := strings.Cut(s.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		return fields[4], nil
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	return "", errors.New("no cgroup2 mount in /proc/self/mountinfo")
}

// ownCgroup is this process's cgroup2 path ("0::PATH" in /proc/self/cgroup),
// "/" when it cannot be read.
func ownCgroup() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "/"
	}
	for line := range bytes.Lines(b) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(string(line)), "0::"); ok && !strings.Contains(p, "..") {
			return p
		}
	}
	return "/"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// uuid is a random (version 4) UUID, as the API server gives a pod.
func uuid() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}
