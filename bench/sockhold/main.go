// Command sockhold holds established TCP connection pairs open for the capture
// benchmark (bench/capture.sh). It is not part of snapdiag.
//
// One sockhold process listens on --addr, opens --pairs connections to itself over
// loopback, accepts them all, and so holds 2*pairs+1 TCP sockets. A process may hold
// at most RLIMIT_NOFILE files (20,000 here, even for root), so the script starts several.
//
// It exits by itself after --hold, on SIGTERM/SIGINT, or when its parent dies. It
// writes "ready PORT SOCKETS" to stdout once every pair is established, or exits
// non-zero if that cannot happen within --setup.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (inside the benchmark namespace)")
	pairs := flag.Int("pairs", 1000, "established connection pairs to open")
	hold := flag.Duration("hold", 300*time.Second, "exit after this long, whatever happens (max 30m)")
	setup := flag.Duration("setup", 60*time.Second, "give up if the pairs are not all established in this time")
	parallel := flag.Int("parallel", 16, "concurrent dialers")
	flag.Parse()

	if *hold <= 0 || *hold > 30*time.Minute {
		fatalf("--hold must be in (0, 30m], got %v", *hold)
	}
	if *pairs < 0 {
		fatalf("--pairs must be >= 0")
	}
	ppid := os.Getppid()
	// Die with the script even if it is killed with SIGKILL and its trap never runs.
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	if os.Getppid() != ppid {
		fatalf("parent already gone")
	}

	// Go raises the soft limit to the hard limit at start-up since 1.19; do it
	// explicitly so the check below states the real limit.
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		fatalf("getrlimit: %v", err)
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		fatalf("setrlimit: %v", err)
	}
	if need := uint64(2**pairs + 64); need > rl.Cur {
		fatalf("%d pairs need about %d files, RLIMIT_NOFILE is %d: start more processes", *pairs, need, rl.Cur)
	}

	// Bounded lifetime, set before anything can block.
	deadline := time.AfterFunc(*hold, func() {
		fmt.Fprintf(os.Stderr, "sockhold: --hold %v is over, exiting\n", *hold)
		os.Exit(0)
	})
	defer deadline.Stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	// No keepalive, on either side: Go turns it on by default (15s), and 50,000
	// sockets opened within a second then probe in step, every 15s. The probes
	// and their ACKs overflow the loopback backlog (net.core.netdev_max_backlog),
	// and after 9 lost probes the kernel resets the connections: the namespace
	// loses sockets ~150s in, and the bursts load the CPUs during the timings.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp4", *addr)
	if err != nil {
		fatalf("listen %s: %v", *addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port

	// Keep every conn reachable: an unreachable net.Conn is closed by its finalizer.
	var (
		mu       sync.Mutex
		accepted = make([]net.Conn, 0, *pairs)
		dialed   = make([]net.Conn, 0, *pairs)
		nAcc     atomic.Int64
		allIn    = make(chan struct{})
	)
	if *pairs == 0 {
		close(allIn)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
			if nAcc.Add(1) == int64(*pairs) {
				close(allIn)
			}
		}
	}()

	failed := make(chan error, 1)
	go func() {
		var wg sync.WaitGroup
		next := make(chan struct{})
		d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
		for w := 0; w < *parallel; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range next {
					c, err := d.Dial("tcp4", ln.Addr().String())
					if err != nil {
						select {
						case failed <- err:
						default:
						}
						return
					}
					mu.Lock()
					dialed = append(dialed, c)
					mu.Unlock()
				}
			}()
		}
		for i := 0; i < *pairs; i++ {
			next <- struct{}{}
		}
		close(next)
		wg.Wait()
	}()

	select {
	case <-allIn:
	case err := <-failed:
		fatalf("dial: %v (after %d accepted)", err, nAcc.Load())
	case <-time.After(*setup):
		fatalf("only %d of %d pairs established after %v", nAcc.Load(), *pairs, *setup)
	case s := <-sigs:
		fatalf("%v during setup", s)
	}
	fmt.Printf("ready %d %d\n", port, 2**pairs+1)
	_ = os.Stdout.Sync()

	s := <-sigs
	fmt.Fprintf(os.Stderr, "sockhold: %v, exiting\n", s)
	mu.Lock()
	runtime.KeepAlive(accepted)
	runtime.KeepAlive(dialed)
	mu.Unlock()
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "sockhold: "+format+"\n", a...)
	os.Exit(1)
}
