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

// A nearly full disk may cost the bundle its large members (the socket
// table, the packets), never the small ones: a collector streams the socket
// summary after the table, when the table's staged copy may have taken the
// last free blocks, and the summary must still reach the bundle. Several
// sizes of free space and table, because which write hits the wall moves
// with them.
func TestNearlyFullDiskKeepsSmallMembers(t *testing.T) {
	for _, free := range []int{72 << 10, 88 << 10, 104 << 10, 120 << 10} {
		for table := free - 24<<10; table <= free; table += 2 << 10 {
			dir := testutil.Tmpfs(t, free)
			w, err := NewWriter(dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			stream := func(owner, name string, data []byte) error {
				f, err := w.For(owner).Create(name)
				if err != nil {
					return err
				}
				if _, err := f.Write(data); err != nil {
					f.Close()
					return err
				}
				return f.Close()
			}
			// The table may not fit even staged: that is the collector's
			// failure to record, not the bundle's.
			_ = stream("sockets", PathSocketsTCP, randomBytes(3, table))
			if err := stream("sockets", PathSocketsSummary, []byte(`{"total":1}`)); err != nil {
				t.Errorf("free %d, table %d: the summary could not be staged: %v", free, table, err)
			}
			for _, m := range testMembers(0) {
				if m.name == PathSocketsTCP || m.name == PathSocketsSummary || m.name == PathPackets {
					continue
				}
				if err := w.For(m.owner).WriteFile(m.name, m.data); err != nil {
					t.Fatalf("free %d, table %d: %s: %v", free, table, m.name, err)
				}
			}
			p, err := w.Commit(FileName("test", testTime), testManifest())
			w.Abort()
			if err != nil {
				t.Errorf("free %d, table %d: no bundle: %v", free, table, err)
				continue
			}
			b, err := Open(p, Limits{})
			if err != nil {
				t.Fatalf("free %d, table %d: %v", free, table, err)
			}
			var names []string
			for _, m := range b.Members() {
				names = append(names, m.Name)
			}
			b.Close()
			for _, want := range []string{PathSocketsSummary, PathUname, "samples/000/time", "proc/net/snmp6"} {
				if !slices.Contains(names, want) {
					t.Errorf("free %d, table %d: %s lost; members %q", free, table, want, names)
				}
			}
		}
	}
}
