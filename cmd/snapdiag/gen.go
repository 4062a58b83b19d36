package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// manSection names the man page section a line of a command's Long text
// starts, or "" for any other line: the text after one such line, up to the
// next, is that section's. In --help they read as plain headings.
func manSection(line string) string {
	switch line {
	case "Exit status:":
		return "EXIT STATUS"
	case "Files:":
		return "FILES"
	case "Environment:":
		return "ENVIRONMENT"
	}
	return ""
}

// newGenCmd is the hidden `snapdiag gen`, which writes what packages install
// beside the binary: `snapdiag gen man DIR`. Only a binary built with
// -tags mangen writes the pages (man.go); the shipped one says how to get
// one.
func newGenCmd() *cobra.Command {
	gen := &cobra.Command{
		Use:    "gen",
		Short:  "Generate files for packaging (man pages)",
		Hidden: true,
	}
	man := &cobra.Command{
		Use:   "man DIR",
		Short: "Write a man page for every command into DIR (snapdiag.1, snapdiag-capture.1, ...)",
		Long: `Man writes one section 1 page per visible command into DIR, which must exist.
The pages' date is SOURCE_DATE_EPOCH (seconds since 1970, UTC) when it is set,
so that a package build is reproducible, else today.

Only a snapdiag built with the mangen build tag writes man pages:
  go run -tags mangen github.com/snapdiag/snapdiag/cmd/snapdiag@VERSION gen man DIR
with VERSION the one snapdiag version prints (in a checkout:
go run -tags mangen ./cmd/snapdiag gen man DIR).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			date, err := manDate(os.Getenv("SOURCE_DATE_EPOCH"), time.Now())
			if err != nil {
				return usageError{err}
			}
			v, _ := buildInfo()
			return writeManPages(cmd.Root(), args[0], v, date)
		},
	}
	wrapArgs(man)
	gen.AddCommand(man)
	return gen
}

// manDate is the pages' date: SOURCE_DATE_EPOCH when set, else now, in UTC
// so that the month printed does not depend on the build machine's zone.
func manDate(epoch string, now time.Time) (time.Time, error) {
	if epoch == "" {
		return now.UTC(), nil
	}
	s, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds: %w", epoch, err)
	}
	return time.Unix(s, 0).UTC(), nil
}
