package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/lab/labsvc"
	"github.com/snapdiag/snapdiag/selftest"
	"github.com/spf13/cobra"
)

type selftestFlags struct {
	format    string
	incidents []string
	// withoutRules are rule ids left out of the analysis: a hidden flag,
	// for the test that proves a wrong analyzer makes the self-test fail.
	withoutRules []string
}

func newSelftestCmd() *cobra.Command {
	var f selftestFlags
	cmd := &cobra.Command{
		Use:   "selftest",
		Short: "Reproduce the classic incidents in throw-away namespaces and check the diagnosis",
		Long: `Selftest proves, on this machine's own kernel, that snapdiag diagnoses what it
claims to. For each incident it creates a pair of network namespaces joined by
a veth pair, starts a stand-in service (this binary) in one, brings the
incident about from the other, captures it with this binary's own capture
inside the service's namespace, analyzes the bundle as snapdiag analyze does,
and compares the findings with the expected diagnosis:

` + incidentHelp() + `
It prints a table (incident, expected diagnosis, what snapdiag said, pass or
fail) and the kernel version; --format json prints the same as one typed
object (schema snapdiag.selftest/v1). Traffic never leaves the namespaces it
creates. Each incident ends within ` + selftest.IncidentTimeout.String() + ` (the four take about 7s), and
its processes (by pid) and namespaces are removed when it ends, also on SIGINT
or SIGTERM. The bundles go to a temporary directory, removed too.

It needs root (network namespaces) and iproute2's ip.

Exit codes: 0 every incident passed, 1 an incident failed or could not be run
(each is named on stderr) or the run was interrupted, 2 usage error or not
root (nothing was done).`,
		Example: `  sudo snapdiag selftest
  sudo snapdiag selftest --incident accept-queue-full --format json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSelftest(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.format, "format", "text", "output format: text or json")
	fl.StringArrayVar(&f.incidents, "incident", nil, "run only this incident (repeatable): "+strings.Join(selftest.Names(), ", "))
	fl.StringArrayVar(&f.withoutRules, "without-rule", nil, "leave this rule out of the analysis (for testing the self-test)")
	_ = fl.MarkHidden("without-rule")
	return cmd
}

// incidentHelp lists the incidents for the help text.
func incidentHelp() string {
	var b strings.Builder
	for _, i := range selftest.Incidents() {
		fmt.Fprintf(&b, "  %-22s %s\n", i.Name, i.Title)
	}
	return b.String()
}

func runSelftest(ctx context.Context, f selftestFlags, stdout, stderr io.Writer) error {
	if f.format != "text" && f.format != "json" {
		return usageError{fmt.Errorf("unknown --format %q (want text or json)", f.format)}
	}
	if _, err := selftest.Select(f.incidents); err != nil {
		return usageError{err}
	}
	rules := analyze.Rules()
	for _, id := range f.withoutRules {
		if !slices.ContainsFunc(rules, func(r analyze.Rule) bool { return r.ID == id }) {
			return usageError{fmt.Errorf("--without-rule: no rule %q", id)}
		}
		rules = slices.DeleteFunc(rules, func(r analyze.Rule) bool { return r.ID == id })
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "snapdiag: selftest needs root: it creates network namespaces (and needs iproute2's ip); nothing was done")
		fmt.Fprintln(stderr, "hint: sudo snapdiag selftest")
		return exitStatus(exitUsage)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary to capture with: %w", err)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := func(name string) { fmt.Fprintf(stderr, "selftest: %s ...\n", name) }
	if f.format == "json" {
		progress = nil
	}
	res, runErr := selftest.Run(ctx, selftest.Options{Executable: exe, Incidents: f.incidents, Rules: rules, Progress: progress})
	if res == nil {
		if errors.Is(runErr, selftest.ErrNeedRoot) {
			return hintError{runErr, "sudo snapdiag selftest"}
		}
		return runErr
	}
	if f.format == "json" {
		err = selftest.RenderJSON(stdout, res)
	} else {
		err = selftest.RenderText(stdout, res)
	}
	if err != nil {
		return fmt.Errorf("write the selftest result: %w", err)
	}
	if runErr != nil {
		return runErr
	}
	if failed := res.Failed(); len(failed) > 0 {
		fmt.Fprintf(stderr, "snapdiag: selftest failed: %s\n", strings.Join(failed, ", "))
		return exitStatus(exitError)
	}
	return nil
}

// newSelftestServiceCmd is the hidden command that runs the self-test's
// stand-in service (package labsvc) inside an incident's namespace, so the
// shipped binary needs no other program.
func newSelftestServiceCmd() *cobra.Command {
	return &cobra.Command{
		Use:                selftest.ServiceCommand,
		Short:              "Run the self-test's stand-in service (internal)",
		Hidden:             true,
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := labsvc.Main(args, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return exitStatus(code)
			}
			return nil
		},
	}
}
