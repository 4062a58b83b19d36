package netns_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"unsafe"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/lab"
	"golang.org/x/sys/unix"
)

// TestVisitNeverTakesTheMainThread: /proc/net shows the namespace of the
// main thread, so while Visit is inside a namespace the rest of the process
// must still see its own there: Visit must never run on the main thread,
// not even when it is called from the main thread, which then is free to run
// the goroutine Visit starts.
func TestVisitNeverTakesTheMainThread(t *testing.T) {
	// lab.New makes its namespace with ip(8), from another process: it
	// leaves the main thread free (a goroutine that ends locked to the main
	// thread parks it for good, and nothing could be tried).
	l := lab.New(t, lab.Options{})
	path := filepath.Join(netns.RunDir, l.Server)
	var self, st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	fromMain := 0
	for range 2000 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			// A new goroutine often runs on the main thread; only those
			// that do call Visit, from there.
			if unix.Gettid() != os.Getpid() {
				return
			}
			fromMain++
			var tid int
			var seen unix.Stat_t
			errs := netns.Visit(context.Background(), []string{path}, []uint64{st.Ino}, func(int) error {
				tid = unix.Gettid()
				return unix.Stat("/proc/self/ns/net", &seen)
			})
			if errs[0] != nil {
				t.Error(errs[0])
			} else if tid == os.Getpid() || seen.Ino != self.Ino {
				t.Errorf("visit %d ran on thread %d (main %d): the process's namespace was %d, its own %d",
					fromMain, tid, os.Getpid(), seen.Ino, self.Ino)
			}
		}()
		<-done
		if t.Failed() || fromMain == 20 {
			break
		}
	}
	if fromMain == 0 {
		t.Skip("no goroutine ran on the main thread: nothing was tried")
	}
}

// TestScanAndVisit: Scan finds namespaces that only a bind mount names, and
// Visit enters each in turn on one thread, inside the namespace it was
// asked for, while the rest of the process stays in its own.
func TestScanAndVisit(t *testing.T) {
	many := lab.NewMany(t, lab.ManyOpts{N: 3})
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		t.Fatal(err)
	}
	res := netns.Scan("/proc", netns.RunDir, self.Ino, 1<<20)
	byName := map[string]bundle.NetNS{}
	for _, n := range res.Found {
		if n.Inode == self.Ino {
			t.Errorf("Scan found the namespace it was told to skip: %+v", n)
		}
		byName[n.Name] = n
	}
	var paths []string
	var inos []uint64
	for _, name := range many.Names {
		n, ok := byName[name]
		if !ok || n.NamedBy != bundle.NamedByScan || n.Path != many.Paths[len(paths)] {
			t.Fatalf("Scan: %s: %+v (found %v)", name, n, ok)
		}
		paths, inos = append(paths, n.Path), append(inos, n.Inode)
	}
	// The last one is asked for under the wrong inode: Visit must refuse it.
	inos[2]++
	var inside []uint64
	errs := netns.Visit(context.Background(), paths, inos, func(i int) error {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return err
		}
		inside = append(inside, st.Ino)
		return nil
	})
	if errs[0] != nil || errs[1] != nil || errs[2] == nil {
		t.Fatalf("Visit errors %v, want the third only", errs)
	}
	if len(inside) != 2 || inside[0] != inos[0] || inside[1] != inos[1] {
		t.Errorf("Visit ran in %v, want %v", inside, inos[:2])
	}
	var after unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &after); err != nil || after.Ino != self.Ino {
		t.Errorf("the process moved: namespace %d, was %d (%v)", after.Ino, self.Ino, err)
	}
	if os.Geteuid() == 0 && res.Count < len(many.Names) {
		t.Errorf("Count %d < %d", res.Count, len(many.Names))
	}
}

// TestScanReadsTheStorageListOnce: containers/storage's list names every
// Podman and CRI-O container of the host, and on a node of hundreds of pods
// is megabytes of JSON. Scan looks up the owner of every namespace, each
// holding a container the list may name: it must read the list once for the
// whole scan, not once per namespace (watch --all-netns scans every ten
// seconds).
func TestScanReadsTheStorageListOnce(t *testing.T) {
	many := lab.NewMany(t, lab.ManyOpts{N: 3})
	ids := []string{idA, idB, idC}
	tr := tree{"varlib/containers/storage/overlay-containers/containers.json": "[]", "run/.keep": ""}
	for i := range many.Paths {
		pid := strconv.Itoa(1000 + i)
		tr["proc/"+pid+"/cgroup"] = "0::/machine.slice/libpod-" + ids[i] + ".scope\n"
		tr["proc/"+pid+"/comm"] = "app\n"
	}
	roots := tr.write(t)
	for i, path := range many.Paths {
		ns := filepath.Join(roots.Proc, strconv.Itoa(1000+i), "ns")
		if err := os.Mkdir(ns, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(path, filepath.Join(ns, "net")); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(netns.EnvHostRun, roots.Run)
	t.Setenv(netns.EnvHostVarLib, roots.VarLib)
	// inotify counts the opens of the list; its closes are watched too, or
	// inotify would merge opens in a row into one event.
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	list := filepath.Join(roots.VarLib, "containers/storage/overlay-containers/containers.json")
	if _, err := unix.InotifyAddWatch(in, list, unix.IN_OPEN|unix.IN_CLOSE_NOWRITE); err != nil {
		t.Fatal(err)
	}
	res := netns.Scan(roots.Proc, t.TempDir(), 0, 100)
	if len(res.Found) != len(many.Paths) {
		t.Fatalf("Scan found %d namespaces, want %d: %+v", len(res.Found), len(many.Paths), res.Found)
	}
	for _, n := range res.Found {
		if n.Owner == nil || n.Owner.Runtime != netns.RuntimePodman {
			t.Errorf("namespace %d: owner %+v, want a Podman container", n.Inode, n.Owner)
		}
	}
	buf := make([]byte, 64<<10)
	k, err := unix.Read(in, buf)
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		t.Fatal(err)
	}
	opens := 0
	for off := 0; off < k; {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		if ev.Mask&unix.IN_OPEN != 0 {
			opens++
		}
		off += unix.SizeofInotifyEvent + int(ev.Len)
	}
	if opens != 1 {
		t.Errorf("Scan of %d namespaces opened containers.json %d times, want once", len(many.Paths), opens)
	}
}
