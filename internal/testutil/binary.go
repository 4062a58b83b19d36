package testutil

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/internal/gobuild"
)

// snapdiagPkg is the command's import path: go build finds it from any
// directory of the module.
const snapdiagPkg = "github.com/snapdiag/snapdiag/cmd/snapdiag"

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]builtBinary{} // by build tags, "" for none
)

// builtBinary is one snapdiag build: its path, or why it failed.
type builtBinary struct {
	path string
	err  error
}

// Snapdiag returns the path of the snapdiag binary, built once per test
// process, for the tests that run it as a user would. A package that uses it
// calls RemoveBuilt from its TestMain.
func Snapdiag(t testing.TB) string {
	t.Helper()
	return SnapdiagTags(t, "")
}

// SnapdiagTags is Snapdiag built with the go build tags given, as -tags
// takes them ("mangen"): once per test process and tags. RemoveBuilt
// removes it too.
func SnapdiagTags(t testing.TB, tags string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	b, ok := built[tags]
	if !ok {
		b = buildSnapdiag(tags)
		built[tags] = b
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// buildSnapdiag builds snapdiag with tags into buildDir, which it creates
// on first use.
func buildSnapdiag(tags string) builtBinary {
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "snapdiag-test-")
		if err != nil {
			return builtBinary{err: err}
		}
		buildDir = dir
	}
	if tags == "" {
		path := filepath.Join(buildDir, "snapdiag")
		return builtBinary{path, goBuild(path, snapdiagPkg)}
	}
	path := filepath.Join(buildDir, "snapdiag-"+strings.ReplaceAll(tags, ",", "-"))
	return builtBinary{path, goBuild(path, snapdiagPkg, "-tags", tags)}
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

// goBuild builds pkg into out with flags, statically (see gobuild.Build).
func goBuild(out, pkg string, flags ...string) error { return gobuild.Build(out, pkg, flags...) }

// RemoveBuilt removes the binaries Snapdiag and SnapdiagTags built, if any. Call it from
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
