// Command snapdiag is the flight recorder for a Linux network service: it
// captures the kernel's evidence before a restart destroys it, and says what
// went wrong.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	// The zone database, embedded: fleet --tz takes IANA names on hosts
	// that have none installed (distroless and scratch images), at about
	// 400 KB of binary.
	_ "time/tzdata"

	"github.com/spf13/cobra"
)

func main() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) }

// Exit codes shared by every command. analyze and watch --once
// also exit 3 when the worst finding is a warning and 4 when it is critical.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// exitStatus ends a command with a code and no message: the command already
// said what it had to say.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a mistake in the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// hintError carries a one-line suggestion printed after the error.
type hintError struct {
	err  error
	hint string
}

func (e hintError) Error() string { return e.err.Error() }
func (e hintError) Unwrap() error { return e.err }

// Main runs snapdiag with args and returns the process exit code. It is the
// one place that turns errors into exit codes and prints them, once.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	var u usageError
	if err != nil && cmd == root && !errors.As(err, &u) && !errors.As(err, new(exitStatus)) {
		// The root runs nothing itself, so its only error is cobra's
		// "unknown command" from finding the subcommand: a usage error.
		err = usageError{err}
	}
	return exitCode(err, stderr, cmd)
}

// exitCode maps err to the exit code and prints it once; cmd is the command
// that ran, whose --help a usage error points to.
func exitCode(err error, stderr io.Writer, cmd *cobra.Command) int {
	if err == nil {
		return exitOK
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	fmt.Fprintf(stderr, "snapdiag: %v\n", err)
	var h hintError
	if errors.As(err, &h) && h.hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", h.hint)
	}
	var u usageError
	if errors.As(err, &u) {
		path := "snapdiag"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
		return exitUsage
	}
	return exitError
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "snapdiag",
		Short: "Capture and diagnose a Linux network service's listen-path trouble",
		Long: `snapdiag freezes the evidence a service restart destroys (kernel network
counters over a short window, listen-path sysctls, every listener's accept
queue, backlog and SYN-RECV count, the kernel log, a packet sample) into one
.tar.zst bundle, and says what went wrong and how to fix it.

Exit status:
  0  success
  1  an error: no bundle could be written, or one could not be read
  2  usage error
  3  analyze, watch --once: the worst finding is a warning
  4  analyze, watch --once: the worst finding is critical
  5  watch --once: a check failed and the restart command failed

Files:
  /var/lib/snapdiag/     bundles, by default (created mode 0700 when missing)
  DIR/snapdiag-HOST-TIME.tar.zst
                         one bundle, mode 0600; tar --zstd -xf opens it
                         (its members are listed in snapdiag-capture(1))
  DIR/.snapdiag.lock     one capture at a time per directory
  DIR/BUNDLE.pending     --upload, push: the bundle is not in the store yet
  ~/.config/snapdiag/redact.key
                         the redaction key of capture --redact and redact

Environment:
  NO_COLOR               when set, analyze and tui print no colour
  SNAPDIAG_HOSTNAME      the host name bundles are named and keyed by,
                         instead of the kernel's (a node agent in a pod sets
                         it to the node's name)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE,
  AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
  AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, AWS_EC2_METADATA_DISABLED
                         push, --upload: the store's credentials and
                         endpoint (see snapdiag push --help)`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	setVersionFlag(root)
	root.AddCommand(
		newCaptureCmd(),
		newAnalyzeCmd(),
		newDiffCmd(),
		newWatchCmd(),
		newPushCmd(),
		newFleetCmd(),
		newVersionCmd(),
		newTUICmd(),
		newTopCmd(),
		newRedactCmd(),
		newSelftestCmd(),
		newSelftestServiceCmd(),
		newSchemaCmd(),
	)
	for _, c := range root.Commands() {
		if c.Args == nil {
			c.Args = cobra.NoArgs
		}
		wrapArgs(c)
	}
	// Hidden, for packaging; its subcommand checks its own arguments.
	root.AddCommand(newGenCmd())
	registerCompletions(root)
	return root
}

// wrapArgs makes argument-count mistakes usage errors (exit 2).
func wrapArgs(c *cobra.Command) {
	check := c.Args
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
