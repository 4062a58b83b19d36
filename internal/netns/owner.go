package netns

import (
	"bytes"

	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// FindContainer returns the lowest pid whose cgroup names the container id
// (or unique prefix) given, under the proc root given.
func FindContainer(proc, id string) (int, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) < 4 || strings.Trim(id, "0123456789abcdef") != "" {
		return 0, fmt.Errorf("--container %q is not a container id (hexadecimal, at least 4 digits)", id)
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return 0, fmt.Errorf("find container %s: %w", id, err)
	}
	found := map[string]int{} // full id -> lowest pid
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "cgroup"))
		if err != nil {
			continue
		}
		full := containerID(b)
		if full == "" || !strings.HasPrefix(full, id) {
			continue
		}
		if p, ok := found[full]; !ok || pid < p {
			found[full] = pid
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("--container %s: no process is in a container with that id", id)
	case 1:
		for _, pid := range found {
			return pid, nil
		}
	}
	ids := make([]string, 0, len(found))
	for full := range found {
		ids = append(ids, bundle.ShortID(full))
	}
	slices.Sort(ids)
	return 0, fmt.Errorf("--container %s is ambiguous: it starts %s", id, strings.Join(ids, ", "))
}

// OwnerOf returns the container that process pid runs in, nil when it is in
// none.
func OwnerOf(proc string, pid int) *bundle.Owner {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil
	}
	id := containerID(b)
	if id == "" {
		return nil
	}
	return &bundle.Owner{ContainerID: id}
}

// containerID finds a 64-hex-digit container id in the last element of a
// /proc/PID/cgroup path ("docker-ID.scope", "cri-containerd-ID.scope",
// "crio-ID.scope", "libpod-ID.scope", or ID alone).
func containerID(cgroup []byte) string {
	for line := range bytes.Lines(cgroup) {
		_, path, ok := bytes.Cut(bytes.TrimSpace(line), []byte("::"))
		if !ok {
			continue
		}
		last := string(path[bytes.LastIndexByte(path, '/')+1:])
		last = strings.TrimSuffix(last, ".scope")
		if i := strings.LastIndexAny(last, "-:"); i >= 0 {
			last = last[i+1:]
		}
		if len(last) == 64 && strings.Trim(last, "0123456789abcdef") == "" {
			return last
		}
	}
	return ""
}
