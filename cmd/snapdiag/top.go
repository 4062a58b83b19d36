package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/top"
	"github.com/snapdiag/snapdiag/tui"
)

// topFlags are snapdiag top's flags: the refresh period, and the capture
// settings 'c' captures with, shared with snapdiag capture (--port also
// narrows the view to those ports).
type topFlags struct {
	captureFlags
	every time.Duration
}

func newTopCmd() *cobra.Command {
	var f topFlags
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Watch this host's listeners live, the worst first",
		Long: `top shows every TCP listener of this host's network namespace, refreshed every
--every: its backlog, accept queue, SYN-RECV count, how full the fuller queue
is, and its own drops per second, each with a sparkline of the last readings,
the fullest first. The line above them is the host's listen-path counters per
second (ListenDrops, ListenOverflows, TCPReqQFullDrop, TCPReqQFullDoCookies,
SyncookiesSent).

Keys are the tui's: up/down (k/j) move, Enter shows the listener's half-open
sources (its SYN-RECV request sockets grouped by remote address, the most
first), esc goes back, / filters, ? lists the keys, q quits. c captures a
bundle now, as snapdiag capture would with the same flags, in the background:
the view stays live and the footer says where the bundle went.

--netns, --pid or --container watch another network namespace (entering it
needs CAP_SYS_ADMIN; without, only its counters can be read, and the screen
says so).

Without root it shows what it can (listeners, queues, drops and counters need
no privilege) and says what it cannot: other users' processes, and in a
bundle from c the packet sample and the kernel log.

Exit status:
  0  top was quit
  1  stdin or stdout is not a terminal
  2  usage error`,
		Example: `  snapdiag top
  snapdiag top --port 143 --every 500ms --out /var/tmp`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTop(f)
		},
	}
	fl := cmd.Flags()
	f.register(fl)
	fl.DurationVar(&f.every, "every", time.Second, "time between readings, at least 100ms")
	return cmd
}

func runTop(f topFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	if f.every < minEvery {
		return usageError{fmt.Errorf("--every must be at least %v, not %v", minEvery, f.every)}
	}
	if !isatty.IsTerminal(os.Stdout.Fd()) || !isatty.IsTerminal(os.Stdin.Fd()) {
		return hintError{errors.New("snapdiag top needs a terminal"), "use 'snapdiag capture' for a bundle from a script"}
	}
	// The namespace the flags name is entered once for the readings; each
	// capture enters it again for itself, as snapdiag capture does.
	var opts collectors.Options
	opts.Host = f.host()
	target, err := openTarget(f.captureFlags, &opts, os.Stderr)
	if err != nil {
		return err
	}
	defer target.Close()
	h := opts.Host
	facts := collectors.HostFacts(h)
	title := facts.Hostname
	if target != nil {
		title += " · " + target.NetNS.String()
	}
	m := tui.NewTop(top.New(h, f.ports), tui.TopOptions{
		Every: f.every,
		Title: title,
		Blind: top.Blind(facts, h.Proc),
		Capture: func(ctx context.Context) (string, error) {
			// What the capture cannot read is in its manifest; its line
			// on stderr would break the screen.
			res, err := captureLocked(ctx, f.captureFlags, io.Discard, func(o *collectors.Options, _ *netns.Target) {
				o.Trigger = trigger("snapdiag top: capture key")
			})
			return res.Path, err
		},
	})
	_, err = tea.NewProgram(m).Run()
	return err
}
