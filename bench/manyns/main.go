// Command manyns holds many network namespaces, each with a TCP listener,
// for the --all-netns benchmark (bench/allns.sh). It is not part of snapdiag.
//
// It makes --n namespaces with lab.OpenMany (bind mounts under /run/netns,
// named sdlab-<pid>-...), prints their names one a line and then "ready",
// and removes them when its stdin closes, on SIGTERM/SIGINT, or after
// --hold, whichever comes first.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/snapdiag/snapdiag/lab"
)

func main() {
	n := flag.Int("n", 200, "namespaces to make (at most 2000)")
	port := flag.Int("port", 8080, "port of each namespace's listener on 127.0.0.1")
	hold := flag.Duration("hold", 10*time.Minute, "remove them after this long, whatever happens (max 30m)")
	flag.Parse()
	if *hold > 30*time.Minute || *port < 1 || *port > 65535 {
		fmt.Fprintln(os.Stderr, "manyns: --hold at most 30m, --port 1-65535")
		os.Exit(2)
	}
	m, err := lab.OpenMany(lab.ManyOpts{N: *n, Port: uint16(*port)})
	if m != nil {
		defer func() {
			if err := m.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "manyns:", err)
			}
		}()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manyns:", err)
		return
	}
	for _, name := range m.Names {
		fmt.Println(name)
	}
	fmt.Println("ready")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(eof) }()
	select {
	case <-stop:
	case <-eof:
	case <-time.After(*hold):
	}
}
