//go:build !mangen

package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// writeManPages, in a build without the mangen tag, writes nothing and says
// how to get the pages of this very version: the generator's dependencies
// would cost every run's start-up, so the shipped binary leaves them out
// (man.go says more).
func writeManPages(_ *cobra.Command, _ string, version string, _ time.Time) error {
	// A release's pages, not the latest's: its version is stamped with or
	// without the v a module version needs.
	at := "latest"
	if v := strings.TrimPrefix(version, "v"); v != "" && v[0] >= '0' && v[0] <= '9' {
		at = "v" + v
	}
	return hintError{
		errors.New("this snapdiag was built without the man page generator"),
		fmt.Sprintf("build one that has it: go run -tags mangen github.com/snapdiag/snapdiag/cmd/snapdiag@%s gen man DIR (in a checkout: go run -tags mangen ./cmd/snapdiag gen man DIR)", at),
	}
}
