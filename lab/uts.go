package lab

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// InUTS runs fn on a fresh goroutine locked to an OS thread that has
// unshared its UTS namespace and set the host name there to hostname.
// Processes fn starts from that goroutine (exec.Cmd.Start, Exec, Start)
// are cloned from that thread and see hostname, as processes of another
// host would; the test process and its other threads keep theirs. Needs
// root (CAP_SYS_ADMIN); a panic in fn becomes an error.
//
// The thread is put back in its own UTS namespace and returned to the
// runtime rather than left to die with the goroutine: a thread that exits
// sends PR_SET_PDEATHSIG to every child it forked, and the runtime may
// have forked anyone's (a lab's ip, the test's S3 server) on it before.
// Only when that restore fails does the thread stay locked and exit.
func InUTS(hostname string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// /proc/thread-self: this thread's namespace, not the process's.
		orig, err := unix.Open("/proc/thread-self/ns/uts", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own uts namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		// unshare(2) of CLONE_NEWUTS by one thread of a multithreaded
		// process changes that thread's nsproxy only, which clone(2)
		// copies into the children it makes.
		if err := unix.Unshare(unix.CLONE_NEWUTS); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare uts namespace: %w", err)
			return
		}
		var ferr error
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			ferr = fmt.Errorf("sethostname %q: %w", hostname, err)
		} else {
			ferr = callSafely(fn)
		}
		if err := unix.Setns(orig, unix.CLONE_NEWUTS); err != nil {
			// Left locked: the thread exits with this goroutine.
			errc <- fmt.Errorf("restore uts namespace: %w (fn: %v)", err, ferr)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
