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
// host would; the test process and its other threads keep theirs. The
// thread is never unlocked, so the runtime ends it with the goroutine
// rather than reuse it with the wrong host name. Needs root
// (CAP_SYS_ADMIN); a panic in fn becomes an error.
func InUTS(hostname string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// unshare(2) on a thread of a multithreaded process is allowed for
		// CLONE_NEWUTS (unlike CLONE_NEWUSER): it changes this thread's
		// nsproxy only, which clone(2) copies into the children it makes.
		if err := unix.Unshare(unix.CLONE_NEWUTS); err != nil {
			errc <- fmt.Errorf("unshare uts namespace: %w", err)
			return
		}
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			errc <- fmt.Errorf("sethostname %q: %w", hostname, err)
			return
		}
		errc <- callSafely(fn)
	}()
	return <-errc
}
