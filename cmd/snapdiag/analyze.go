package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/spf13/cobra"
)

type analyzeFlags struct {
	format      string
	minSeverity string
	noColor     bool
}

func newAnalyzeCmd() *cobra.Command {
	var f analyzeFlags
	cmd := &cobra.Command{
		Use:   "analyze BUNDLE...",
		Short: "Say what went wrong in each bundle, with the evidence and the fix",
		Long: `Analyze reads each bundle (a .tar.zst, or a bundle unpacked into a directory)
and prints a report: a one-line verdict, then the findings by severity with
their evidence and the remedies right for the bundle's kernel.

A bundle is untrusted: only regular files are read (a named pipe or a device
is refused at once), and control characters in its strings are shown made
visible (\x1b) in the text and markdown reports.

A whole-node bundle (capture --all-netns) is analyzed per network namespace:
each namespace's findings name its pod or container, the host-wide rules
(conntrack, TCP memory, file descriptors, softnet, NIC) run once, and the
report lists every namespace with its worst finding.

Exit status:
  0  nothing above info was found
  3  the worst finding is a warning
  4  the worst finding is critical
  1  a bundle could not be read
  2  usage error
The exit code always reflects every finding, whatever --min-severity hides,
in every namespace of a whole-node bundle.
With several bundles, one that could not be read makes it 1 whatever the
others found (the others' reports are still printed): a verdict that missed a
bundle is not a verdict.

Environment:
  NO_COLOR   when set, the text report has no colour`,
		Example: `  snapdiag analyze /var/lib/snapdiag/snapdiag-imap1-20261125T133401Z.tar.zst
  snapdiag analyze --format json *.tar.zst | jq .verdict`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAnalyze(f, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.format, "format", "text", "output format: text, json or markdown")
	fl.StringVar(&f.minSeverity, "min-severity", "info", "show findings at this severity or above: info, warning or critical")
	fl.BoolVar(&f.noColor, "no-color", false, "never colour the text output (NO_COLOR does the same)")
	return cmd
}

func runAnalyze(f analyzeFlags, paths []string, stdout, stderr io.Writer) error {
	format := strings.ToLower(f.format)
	switch format {
	case "text", "json", "markdown", "md":
	default:
		return usageError{fmt.Errorf("unknown --format %q (want text, json or markdown)", f.format)}
	}
	minSev, err := analyze.ParseSeverity(f.minSeverity)
	if err != nil {
		return usageError{err}
	}
	color := !f.noColor && os.Getenv("NO_COLOR") == "" && isTerminal(stdout)
	var reports []*analyze.Report
	failed := 0
	for i, p := range paths {
		s, err := analyze.LoadPath(p)
		if err != nil {
			fmt.Fprintf(stderr, "snapdiag: %v\n", err)
			failed++
			continue
		}
		r := analyze.Analyze(s, p, analyze.Rules())
		reports = append(reports, r)
		shown := r.Filter(minSev)
		switch format {
		case "json":
			err = analyze.RenderJSON(stdout, shown)
		case "markdown", "md":
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			err = analyze.RenderMarkdown(stdout, shown)
		default:
			if i > 0 {
				fmt.Fprintln(stdout, "\n"+strings.Repeat("─", 80)+"\n")
			}
			err = analyze.RenderText(stdout, shown, analyze.TextOptions{Color: color})
		}
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if failed > 0 {
		return exitStatus(exitError)
	}
	if code := analyze.ExitCode(reports...); code != analyze.ExitOK {
		return exitStatus(code)
	}
	return nil
}
