// Command timeit runs a command and writes, as GNU time -f '%e %M %U %S'
// does, its wall time, peak RSS (KiB) and user and system CPU time, but to
// the microsecond: GNU time gives seconds to the hundredth, and on a capture
// of about 0.1 s that rounding is 5% of the figure, as much as the
// differences bench/capture.sh measures. It is not part of snapdiag.
//
//	timeit -o FILE -- COMMAND [ARG...]
//
// The figures are the command's own and those of every descendant it
// waited for (wait4's rusage), as GNU time reports them: RSS is the largest
// of them, not a sum. Its exit status is the command's (128+N when signal N
// ended it); the line is written either way.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	out := flag.String("o", "", "write the figures to this file (default stderr)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: timeit [-o FILE] -- COMMAND [ARG...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	// Like GNU time: ^C and SIGTERM reach the command (same process group,
	// or passed on), and timeit stays to report.
	signal.Ignore(syscall.SIGINT, syscall.SIGQUIT)
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "timeit: %v\n", err)
		os.Exit(127)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		for s := range term {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		} else {
			code = ee.ExitCode()
		}
	case err != nil:
		fmt.Fprintf(os.Stderr, "timeit: %v\n", err)
		os.Exit(127)
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	line := fmt.Sprintf("%.6f 0 0 0\n", wall.Seconds())
	if ru != nil {
		line = fmt.Sprintf("%.6f %d %.6f %.6f\n", wall.Seconds(), ru.Maxrss,
			time.Duration(syscall.TimevalToNsec(ru.Utime)).Seconds(), time.Duration(syscall.TimevalToNsec(ru.Stime)).Seconds())
	}
	w := os.Stderr
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(os.Stderr, "timeit: %v\n", err)
			os.Exit(127)
		}
		w = f
	}
	fmt.Fprint(w, line)
	if err := w.Close(); err != nil && *out != "" {
		fmt.Fprintf(os.Stderr, "timeit: %v\n", err)
	}
	os.Exit(code)
}
