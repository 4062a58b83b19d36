package testutil

import (
	"slices"
	"strings"
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
