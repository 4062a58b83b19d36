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
// ended it). FILE is created before the command starts; the line is
// written once it ends, whatever its status.
//
// Like GNU time, it stays to report when SIGINT, SIGQUIT or SIGTERM
// arrive, and does not pass them on: they reach the command from the
// terminal or from timeout(1), which signal the whole process group. The
// command starts with their default handling.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
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
	var w io.WriteCloser = os.Stderr
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(os.Stderr, "timeit: %v\n", err)
			os.Exit(127)
		}
		w = f
	}
	// Caught, not ignored: a caught signal's handling is reset to the
	// default in the command at exec, an ignored one would stay ignored.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM)
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "timeit: %v\n", err)
		os.Exit(127)
	}
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
	// Figures that cannot be had are NaN, which bench/capture.sh records
	// as missing rather than as 0.
	line := fmt.Sprintf("%.6f NaN NaN NaN\n", wall.Seconds())
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		line = fmt.Sprintf("%.6f %d %.6f %.6f\n", wall.Seconds(), ru.Maxrss,
			time.Duration(syscall.TimevalToNsec(ru.Utime)).Seconds(), time.Duration(syscall.TimevalToNsec(ru.Stime)).Seconds())
	}
	if _, err := io.WriteString(w, line); err != nil {
		fmt.Fprintf(os.Stderr, "timeit: %v\n", err)
		code = 127
	}
	if w != os.Stderr {
		if err := w.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "timeit: %v\n", err)
			code = 127
		}
	}
	os.Exit(code)
}
