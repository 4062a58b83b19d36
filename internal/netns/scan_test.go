package netns_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
