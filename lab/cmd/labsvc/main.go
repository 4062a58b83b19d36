// Command labsvc stands in for a network service inside a lab namespace: it
// listens on one address with an exact listen() backlog (and SO_REUSEPORT
// with --reuseport, so several labsvc processes form one group), handles
// connections as told, prints "listening ADDR" once ready, and exits on
// SIGTERM or SIGINT, or after --lifetime at the latest. Tests start it with
// lab.Lab.Start, so a capture sees a listener owned by a process other than
// the test, and the watchdog has a service to restart.
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/snapdiag/snapdiag/lab"
)

func main() { os.Exit(run()) }

func run() int {
	addr := flag.String("listen", "", "ADDR:PORT to listen on (required)")
	backlog := flag.Int("backlog", 16, "listen() backlog")
	accept := flag.String("accept", "close", "what to do with connections: never, close, drain or hold")
	lifetime := flag.Duration("lifetime", time.Minute, "exit after this long at the latest (at most 10m)")
	reusePort := flag.Bool(string(lab.ReusePort), false, "set SO_REUSEPORT, to join a group of listeners on the same address")
	flag.Parse()
	if *addr == "" || flag.NArg() != 0 || *lifetime <= 0 || *lifetime > 10*time.Minute {
		flag.Usage()
		return 2
	}
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "labsvc: --listen: %v\n", err)
		return 2
	}
	mode, err := lab.ParseAcceptMode(*accept)
	if err != nil {
		fmt.Fprintf(os.Stderr, "labsvc: --accept: %v\n", err)
		return 2
	}
	var opts []lab.ListenOption
	if *reusePort {
		opts = append(opts, lab.ReusePort)
	}
	ln, err := lab.Listen(ap, *backlog, mode, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "labsvc: %v\n", err)
		return 1
	}
	defer ln.Close()
	fmt.Printf("listening %s\n", ln.Addr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(*lifetime):
	}
	if err := ln.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "labsvc: %v\n", err)
		return 1
	}
	return 0
}
