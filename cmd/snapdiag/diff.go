package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/spf13/cobra"
)

type diffFlags struct {
	format  string
	noColor bool
}

// diffFormats are diff's --format values.
var diffFormats = []cobra.Completion{
	cobra.CompletionWithDesc("text", "the differences for a person (colour on a terminal)"),
	cobra.CompletionWithDesc("json", "snapdiag.diff/v1, one object"),
}

func newDiffCmd() *cobra.Command {
	var f diffFlags
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Say what changed between two bundles: sysctls, listeners, counter rates, findings",
		Long: `Diff compares bundle A with bundle B (each a .tar.zst, or a bundle unpacked
into a directory): before and after a fix, or a healthy host against a
failing one. It prints only what differs:

  findings   that appeared in B, went away, or changed severity, matched by
             id, listener, sysctl key and namespace
  sysctls    the listen-path ones first (somaxconn, tcp_max_syn_backlog,
             tcp_syncookies, ...), then every other key that differs
  listeners  matched by local ADDR:PORT: backlog, the longest accept queue,
             the most SYN-RECV, the socket's own drop rate, the owner
             process; listeners only in A or only in B
  counters   the rate per second over each bundle's samples of the TcpExt
             and Tcp counters the rules read, with the ratio B/A
  host       the host name and kernel release, when they differ

A bundle read despite damage (cut short) is compared as far as it goes; the
gaps of both bundles are listed, so a difference the diff could not see is
never taken for none.

Whole-node bundles (capture --all-netns) are compared per network namespace:
the host's, then each other namespace matched by its inode (its own sysctls,
listeners and counter rates), and those only in A or only in B. A re-created
pod has a new inode, so it shows as only in A and only in B.

Exit status:
  0  the bundles were compared, whatever the differences
  1  a bundle could not be read
  2  usage error

Environment:
  NO_COLOR   when set, the text output has no colour`,
		Example: `  snapdiag diff before.tar.zst after.tar.zst
  snapdiag diff --format json healthy.tar.zst failing.tar.zst | jq .findings`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(f, args[0], args[1], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.format, "format", "text", "output format: text or json")
	fl.BoolVar(&f.noColor, "no-color", false, "never colour the text output (NO_COLOR does the same)")
	return cmd
}

func runDiff(f diffFlags, pathA, pathB string, stdout, stderr io.Writer) error {
	format := strings.ToLower(f.format)
	if format != "text" && format != "json" {
		return usageError{fmt.Errorf("unknown --format %q (want text or json)", f.format)}
	}
	a, errA := analyze.LoadPath(pathA)
	if errA != nil {
		fmt.Fprintf(stderr, "snapdiag: bundle A: %v\n", errA)
	}
	b, errB := analyze.LoadPath(pathB)
	if errB != nil {
		fmt.Fprintf(stderr, "snapdiag: bundle B: %v\n", errB)
	}
	if errA != nil || errB != nil {
		return exitStatus(exitError)
	}
	d := analyze.Compare(a, pathA, b, pathB, analyze.Rules())
	var err error
	if format == "json" {
		err = analyze.RenderDiffJSON(stdout, d)
	} else {
		color := !f.noColor && os.Getenv("NO_COLOR") == "" && isTerminal(stdout)
		err = analyze.RenderDiffText(stdout, d, analyze.TextOptions{Color: color})
	}
	if err != nil {
		return fmt.Errorf("write diff: %w", err)
	}
	return nil
}
