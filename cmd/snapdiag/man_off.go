//go:build !mangen

package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"
)

// writeManPages, in a build without the mangen tag, writes nothing and says
// how to get the pages: the generator's dependencies would cost every run's
// start-up, so the shipped binary leaves them out (man.go says more).
func writeManPages(*cobra.Command, string, string, time.Time) error {
	return hintError{
		errors.New("this snapdiag was built without the man page generator"),
		"build one that has it: go run -tags mangen ./cmd/snapdiag gen man DIR",
	}
}
