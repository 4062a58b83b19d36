package netns_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
)

// TestEnterNeverTakesTheMainThread: the runtime never ends the main thread,
// and /proc/net shows the main thread's namespace, so a Thread must never be
// the main thread. Entered many times, with the main thread as free to run
// goroutines as any, it never is, and after each Close the process's
// /proc/self/ns/net is its own again.
func TestEnterNeverTakesTheMainThread(t *testing.T) {
	testutil.NeedRoot(t, "entering a network namespace needs CAP_SYS_ADMIN")
	l := lab.New(t, lab.Options{})
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(netns.RunDir, l.Server)
	for i := range 200 {
		th, err := netns.Enter(path)
		if err != nil {
			t.Fatal(err)
		}
		tid := th.TID()
		th.Close()
		if tid == os.Getpid() {
			t.Fatalf("entry %d entered the namespace on the main thread", i)
		}
		if got, err := os.Readlink("/proc/self/ns/net"); err != nil || got != own {
			t.Fatalf("after entry %d, /proc/self/ns/net is %s (%v), want %s", i, got, err, own)
		}
	}
}

// TestDoPanicReachesTheCaller: a panic in the function given to Do is the
// caller's, where the capture's collectors recover from theirs (a collector
// that panics fails alone), not the Thread's goroutine's, where nothing
// recovers it and the whole process would end. The Thread serves on.
func TestDoPanicReachesTheCaller(t *testing.T) {
	testutil.NeedRoot(t, "entering a network namespace needs CAP_SYS_ADMIN")
	l := lab.New(t, lab.Options{})
	th, err := netns.Enter(filepath.Join(netns.RunDir, l.Server))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	got := func() (p any) {
		defer func() { p = recover() }()
		th.Do(func() { panic("hostile input") })
		return nil
	}()
	if got != "hostile input" {
		t.Fatalf("Do's caller recovered %v, want the panic", got)
	}
	ran := false
	if err := th.Do(func() { ran = true }); err != nil || !ran {
		t.Fatalf("after the panic, Do: ran %v, %v", ran, err)
	}
}
