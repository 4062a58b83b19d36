package bundle

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/snapdiag/snapdiag/internal/testutil"
)

// leftovers lists what the Writer left in dir under its temporary prefix.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(dir, tempPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// When the full bundle does not fit, Commit writes it without the large
// members and the manifest says which were left out and why.
func TestCommitDropsLargeMembersWhenDiskFills(t *testing.T) {
	// 700 KiB of incompressible pcap fits staged in 1 MiB, but not a second
	// time in the archive beside it.
	dir := testutil.Tmpfs(t, 1<<20)
	p := writeBundle(t, dir, testMembers(700<<10))

	b, err := Open(p, Limits{})
	if err != nil {
		t.Fatalf("the smaller bundle does not open: %v", err)
	}
	defer b.Close()
	var names []string
	for _, m := range b.Members() {
		names = append(names, m.Name)
	}
	want := slices.DeleteFunc(slices.Clone(wantOrder), func(n string) bool {
		return n == PathSocketsTCP || n == PathPackets
	})
	if !slices.Equal(names, want) {
		t.Errorf("members %q\nwant %q: every member but the socket table and the packets", names, want)
	}
	m := b.Manifest()
	for _, tc := range []struct{ collector, member string }{
		{"sockets", PathSocketsTCP},
		{"packets", PathPackets},
	} {
		c := m.Collector(tc.collector)
		if c == nil {
			t.Errorf("manifest has no %s entry", tc.collector)
			continue
		}
		if c.Status != StatusFailed || !strings.Contains(c.Error, tc.member+" left out") ||
			!strings.Contains(c.Error, syscall.ENOSPC.Error()) || !strings.Contains(c.Error, dir) {
			t.Errorf("%s: %s %q, want failed, naming %s, the directory and %q",
				tc.collector, c.Status, c.Error, tc.member, syscall.ENOSPC.Error())
		}
		if slices.Contains(c.Files, tc.member) {
			t.Errorf("%s: files %q still list %s", tc.collector, c.Files, tc.member)
		}
	}
	if left := leftovers(t, dir); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// When not even the small members fit, Commit fails, says why, and leaves
// nothing behind: no bundle, no temporary file, no staging folder.
func TestCommitFailsCleanlyOnFullDisk(t *testing.T) {
	dir := testutil.Tmpfs(t, 64<<10)
	w, err := NewWriter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	// Held in memory, so staging succeeds and only the archive hits the limit.
	if err := w.For("system").WriteFile("system/big", randomBytes(2, 200<<10)); err != nil {
		t.Fatal(err)
	}
	p, err := w.Commit(FileName("test", testTime), testManifest())
	if err == nil {
		t.Fatalf("Commit = %s, nil; want an error: 200 KiB cannot fit in 64 KiB", p)
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Commit error %v does not wrap ENOSPC", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, FileName("test", testTime))); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("a file is under the bundle's final name after a failed Commit: %v", serr)
	}
	if left := leftovers(t, dir); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
