package main

import (
	"fmt"
	"runtime/debug"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/spf13/cobra"
)

// Set with -ldflags "-X main.version=... -X main.commit=..." by release builds.
var (
	version = "dev"
	commit  = ""
)

// buildInfo returns the version and the commit, from the build's VCS stamp
// when the linker did not set them.
func buildInfo() (string, string) {
	v, c := version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
	}
	return v, c
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the bundle format",
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, c := buildInfo()
			if c == "" {
				c = "unknown"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "snapdiag %s\ncommit %s\nbundle format %s\n", v, c, bundle.Format)
			return nil
		},
	}
}
