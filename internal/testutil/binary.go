package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// snapdiagPkg is the command's import path: go build finds it from any
// directory of the module.
const snapdiagPkg = "github.com/snapdiag/snapdiag/cmd/snapdiag"

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// buildLimit bounds one go build.
const buildLimit = 3 * time.Minute

// Snapdiag returns the path of the snapdiag binary, built once per test
// process, for the tests that run it as a user would. A package that uses it
// calls RemoveBuilt from its TestMain.
func Snapdiag(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "snapdiag-test-"); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "snapdiag")
		buildErr = goBuild(buildBin, snapdiagPkg)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Build compiles the main package pkg (an import path) into the test's
// temporary directory and returns the binary's path; flags go to go build
// before the package (-ldflags as a release sets them, say). The go
// command's build cache makes a repeated build cheap.
func Build(t testing.TB, pkg string, flags ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if err := goBuild(out, pkg, flags...); err != nil {
		t.Fatal(err)
	}
	return out
}

// goBuild builds pkg into out with flags, statically (the lab runs binaries
// inside network namespaces, where a dynamic loader's view may differ).
func goBuild(out, pkg string, flags ...string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildLimit)
	defer cancel()
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, gobin, append(args, pkg)...)
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// RemoveBuilt removes the binary Snapdiag built, if any. Call it from
// TestMain after m.Run.
func RemoveBuilt() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Result is how a command ended: its exit code and what it printed.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs argv in dir (the test's working directory when empty) with env
// added to the environment, killed after timeout (WaitLimit when 0) so a
// hung command fails the test instead of hanging it. A command that could
// not be started fails the test; a non-zero exit is in Result.Code.
func Run(t testing.TB, timeout time.Duration, dir string, env []string, argv ...string) Result {
	t.Helper()
	if timeout <= 0 {
		timeout = WaitLimit
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", argv, err)
	}
	return Result{code, out.String(), errb.String()}
}
