package testutil

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Inode is the inode number of the file at path: for a namespace file
// (/run/netns/NAME, /proc/PID/ns/net), the namespace's, as lsns shows it.
func Inode(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// Sleep starts sleep for secs seconds, in a network namespace of its own
// when newNet, with env added to this process's environment, and kills it
// when the test ends. It returns the process's pid.
func Sleep(t testing.TB, secs int, newNet bool, env ...string) int {
	t.Helper()
	cmd := exec.Command("sleep", strconv.Itoa(secs))
	cmd.Env = append(os.Environ(), env...)
	if newNet {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

// DevNames lists the interfaces of a /proc/net/dev, sorted: which
// namespace's file it is.
func DevNames(dev []byte) []string {
	var names []string
	for line := range strings.Lines(string(dev)) {
		if name, _, ok := strings.Cut(line, ":"); ok {
			names = append(names, strings.TrimSpace(name))
		}
	}
	slices.Sort(names)
	return names
}
