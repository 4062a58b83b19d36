package testutil

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// cgroup2Root is where the unified cgroup hierarchy is mounted, from
// /proc/self/mountinfo: /sys/fs/cgroup on most systems, /sys/fs/cgroup/unified
// on hybrid ones.
func cgroup2Root() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && strings.HasPrefix(post, "cgroup2 ") && len(fields) >= 5 && fields[3] == "/" {
			return fields[4], nil
		}
	}
	return "", errors.New("no cgroup2 mount in /proc/self/mountinfo")
}

// Container is a cgroup laid out as containerd's under Kubernetes, for
// tests of what finds a container from its processes' cgroups.
type Container struct {
	// ID is the container id, 64 hex digits, as the scope's name has it.
	ID string
	// PodUID is the pod's uid, with dashes (the slice's name has
	// underscores).
	PodUID string
	// Path is the scope's cgroup path, as /proc/PID/cgroup shows it.
	Path string

	root string
	t    testing.TB
}

// FakeContainer moves process pid into a new cgroup laid out as
// containerd's under Kubernetes (a burstable pod's slice, a cri-containerd
// scope) and returns it. Processes added to it are moved back to the root
// cgroup, and the cgroups are removed, when the test ends. It skips the test
// when there is no writable cgroup2 hierarchy.
func FakeContainer(t testing.TB, pid int) *Container {
	t.Helper()
	root, err := cgroup2Root()
	if err != nil {
		t.Skipf("no cgroup2 hierarchy to put a fake container in: %v", err)
	}
	b := make([]byte, 32)
	rand.Read(b)
	c := &Container{ID: hex.EncodeToString(b), root: root, t: t}
	c.PodUID = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	pod := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(c.PodUID, "-", "_") + ".slice"
	c.Path = pod + "/cri-containerd-" + c.ID + ".scope"
	dirs := []string{"/kubepods.slice", "/kubepods.slice/kubepods-burstable.slice", pod, c.Path}
	var made []string
	t.Cleanup(func() {
		// A cgroup with processes cannot be removed: move any left to
		// the root cgroup first.
		if procs, err := os.ReadFile(filepath.Join(root, c.Path, "cgroup.procs")); err == nil {
			for p := range strings.FieldsSeq(string(procs)) {
				if err := os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(p), 0); err != nil && !errors.Is(err, unix.ESRCH) {
					t.Errorf("move %s out of %s: %v", p, c.Path, err)
				}
			}
		}
		// A process that was exiting as it was listed stays in the
		// cgroup until it is reaped (by whoever started it): rmdir is
		// EBUSY until cgroup.events says "populated 0".
		Eventually(t, 0, "cgroup "+c.Path+" to empty", func() (bool, string) {
			ev, err := os.ReadFile(filepath.Join(root, c.Path, "cgroup.events"))
			return err != nil || strings.Contains(string(ev), "populated 0"), string(ev)
		})
		for _, d := range slices.Backward(made) {
			if err := os.Remove(d); err != nil {
				t.Errorf("remove cgroup %s: %v", d, err)
			}
		}
	})
	for _, d := range dirs {
		p := filepath.Join(root, d)
		err := os.Mkdir(p, 0o755)
		switch {
		case err == nil:
			made = append(made, p)
		case errors.Is(err, fs.ErrExist):
		case errors.Is(err, fs.ErrPermission), errors.Is(err, unix.EROFS):
			t.Skipf("cgroup2 at %s is not writable: %v", root, err)
		default:
			t.Fatal(err)
		}
	}
	if err := c.add(pid); err != nil {
		t.Skipf("cannot move a process into a cgroup2 cgroup (%v)", err)
	}
	return c
}

// Add moves process pid into the container, as a runtime starts a
// container's new process after a restart.
func (c *Container) Add(pid int) {
	c.t.Helper()
	if err := c.add(pid); err != nil {
		c.t.Fatal(err)
	}
}

func (c *Container) add(pid int) error {
	if err := os.WriteFile(filepath.Join(c.root, c.Path, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("move %d into cgroup %s: %w", pid, c.Path, err)
	}
	return nil
}
