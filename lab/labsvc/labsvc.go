// Package labsvc stands in for a network service inside a lab namespace: it
// listens on one address with an exact listen() backlog (and SO_REUSEPORT
// with --reuseport, so several labsvc processes form one group), handles
// connections as told, prints "listening ADDR" once ready, and exits on
// SIGTERM or SIGINT, or after --lifetime at the latest. lab/cmd/labsvc and
// snapdiag's hidden selftest-service command both run Main; lab.Lab.Service
// starts one of them, so a capture sees a listener owned by a process other than
// the test, and the watchdog has a service to restart.
//
// With --nofile N it is a server out of file descriptors: after listening it
// lowers its RLIMIT_NOFILE (the soft limit) to N, opens /dev/null until
// open() fails with EMFILE, and then accepts the way Go's net/http does,
// backing off on errors: every accept() fails with EMFILE, and it prints
// "accept: EMFILE" the first time.
package labsvc

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/snapdiag/snapdiag/lab"
	"golang.org/x/sys/unix"
)

// Main runs the service with the command-line arguments args (without the
// program name), writing "listening ADDR" and its other progress lines to
// stdout and errors to stderr, and returns the exit code: 0 after SIGTERM,
// SIGINT or --lifetime, 1 when it cannot listen, 2 for bad arguments.
func Main(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("labsvc", flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("listen", "", "ADDR:PORT to listen on (required)")
	backlog := fl.Int("backlog", 16, "listen() backlog")
	accept := fl.String("accept", "close", "what to do with connections: never, close, drain or hold")
	lifetime := fl.Duration("lifetime", time.Minute, "exit after this long at the latest (at most 10m)")
	nofile := fl.Int("nofile", 0, "lower RLIMIT_NOFILE to this, fill it and accept into EMFILE (16 to 4096; 0: off)")
	reusePort := fl.Bool(string(lab.ReusePort), false, "set SO_REUSEPORT, to join a group of listeners on the same address")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *addr == "" || fl.NArg() != 0 || *lifetime <= 0 || *lifetime > 10*time.Minute ||
		*nofile != 0 && (*nofile < 16 || *nofile > 4096) {
		fl.Usage()
		return 2
	}
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "labsvc: --listen: %v\n", err)
		return 2
	}
	mode, err := lab.ParseAcceptMode(*accept)
	if err != nil {
		fmt.Fprintf(stderr, "labsvc: --accept: %v\n", err)
		return 2
	}
	if *nofile > 0 {
		// The accept loop is exhaustAndAccept's, not the Listener's.
		mode = lab.NeverAccept
	}
	var opts []lab.ListenOption
	if *reusePort {
		opts = append(opts, lab.ReusePort)
	}
	ln, err := lab.Listen(ap, *backlog, mode, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "labsvc: %v\n", err)
		return 1
	}
	defer ln.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	if *nofile > 0 {
		n, err := exhaustFiles(*nofile)
		if err != nil {
			fmt.Fprintf(stderr, "labsvc: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "opened %d files up to RLIMIT_NOFILE %d\n", n, *nofile)
		wg.Add(1)
		go func() {
			defer wg.Done()
			acceptWithBackoff(ln.FD(), stop, stdout)
		}()
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(*lifetime):
	}
	if err := ln.Close(); err != nil {
		fmt.Fprintf(stderr, "labsvc: %v\n", err)
		return 1
	}
	return 0
}

// exhaustFiles lowers the soft RLIMIT_NOFILE to limit and opens /dev/null
// until open() fails with EMFILE, at most limit times, and returns how many
// it opened. Descriptors numbered at or above the new limit stay open (the
// kernel does not close them), so the process may hold more than limit.
func exhaustFiles(limit int) (int, error) {
	// The Go runtime creates its epoll descriptor on first use of a
	// pollable file (netpollGenericInit), and dies when it cannot: make it
	// now, while descriptors are left.
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("start the runtime's poller: %w", err)
	}
	r.Close()
	w.Close()
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	rl.Cur = uint64(limit)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("lower RLIMIT_NOFILE to %d: %w", limit, err)
	}
	opened := 0
	for range limit {
		_, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EMFILE) {
			return opened, nil
		}
		if err != nil {
			return opened, fmt.Errorf("open /dev/null: %w", err)
		}
		opened++
	}
	return opened, nil
}

// acceptWithBackoff accepts on fd until stop is closed, closing what it
// accepts. On an error it waits as Go's net/http Server does (5 ms,
// doubling to 1 s) and tries again: out of descriptors, every accept()
// fails with EMFILE and the connections stay in the accept queue.
func acceptWithBackoff(fd int, stop <-chan struct{}, stdout io.Writer) {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	var delay time.Duration
	told := false
	for {
		select {
		case <-stop:
			return
		default:
		}
		if n, err := unix.Poll(pfd, 50); n == 0 || err != nil {
			continue
		}
		cfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
		if err == nil {
			unix.Close(cfd)
			delay = 0
			continue
		}
		if errors.Is(err, unix.EMFILE) && !told {
			fmt.Fprintln(stdout, "accept: EMFILE")
			told = true
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		select {
		case <-stop:
			return
		case <-time.After(delay):
		}
	}
}
