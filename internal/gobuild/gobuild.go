// Package gobuild builds a main package of this module with the go command,
// for the tests that run a built binary (internal/testutil, lab). It does not
// import testing, so the lab, which the shipped binary's self-test uses, can
// build with it without linking testing into that binary.
package gobuild

import (
	"context"
	"fmt"
	"os/exec"
	"time"
)

// Limit bounds one go build.
const Limit = 3 * time.Minute

// Build builds pkg (an import path) into out with the extra go build flags
// given, statically: the lab runs binaries inside network namespaces, where
// a dynamic loader's view may differ.
func Build(out, pkg string, flags ...string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Limit)
	defer cancel()
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, gobin, append(args, pkg)...)
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
