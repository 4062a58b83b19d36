package main

import (
	"fmt"
	"runtime/debug"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/spf13/cobra"
)

// Set by release builds with
// -ldflags "-X main.version=v1.2.3 -X main.commit=0123abc"; a build without
// them falls back to what the go command stamped into the binary.
var (
	version = "dev"
	commit  = ""
)

// buildInfo returns the version and the commit of this binary.
func buildInfo() (string, string) {
	bi, _ := debug.ReadBuildInfo()
	return resolveVersion(version, commit, bi)
}

// resolveVersion prefers what the linker set (ldVersion, ldCommit) and falls
// back to bi: the module version `go install ...@v1.2.3` records, and the
// VCS revision a build in a git checkout records, with "-dirty" when the
// work tree had changes. bi may be nil.
func resolveVersion(ldVersion, ldCommit string, bi *debug.BuildInfo) (string, string) {
	v, c := ldVersion, ldCommit
	if bi == nil {
		return v, c
	}
	// "(devel)" is what the go command records for a build of the main
	// module from its own directory when no VCS tag gives a version.
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if c == "" {
		var rev string
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" && dirty {
			rev += "-dirty"
		}
		c = rev
	}
	return v, c
}

// versionText is what both `snapdiag version` and `snapdiag --version`
// print: the version, the commit and the bundle format this binary writes.
func versionText() string {
	v, c := buildInfo()
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("snapdiag %s\ncommit %s\nbundle format %s\n", v, c, bundle.Format)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the bundle format",
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), versionText())
			return nil
		},
	}
}

// setVersionFlag gives root a --version flag that prints what `snapdiag
// version` prints. Declaring the flag here, before cobra would, keeps cobra
// from taking -v as its shorthand.
func setVersionFlag(root *cobra.Command) {
	root.Version = versionText()
	root.SetVersionTemplate("{{.Version}}")
	root.Flags().Bool("version", false, "print the version, the commit and the bundle format, and exit")
}
