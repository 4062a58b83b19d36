package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"github.com/snapdiag/snapdiag/schema"
	"github.com/snapdiag/snapdiag/selftest"
)

// selftestLimit bounds one run of snapdiag selftest in these tests: far
// above what it takes (seconds), so only a hang fails on it.
const selftestLimit = 2 * time.Minute

// runSelftestJSON runs the real binary's selftest with --format json and returns
// its exit code and decoded result.
func runSelftestJSON(t *testing.T, args ...string) (int, *selftest.Result) {
	t.Helper()
	r := testutil.Run(t, selftestLimit, "", []string{runMark(t)}, append([]string{testutil.Snapdiag(t), "selftest", "--format", "json"}, args...)...)
	var res selftest.Result
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("selftest exit %d: decode its JSON: %v\nstdout:\n%s\nstderr:\n%s", r.Code, err, r.Stdout, r.Stderr)
	}
	if res.Schema != selftest.Schema {
		t.Errorf("schema %q, want %q", res.Schema, selftest.Schema)
	}
	testutil.ValidateJSON(t, schema.Selftest, []byte(r.Stdout))
	t.Logf("selftest %v: exit %d in %.1fs; stderr:\n%s", args, r.Code, res.Seconds, r.Stderr)
	return r.Code, &res
}

// TestLabSelftestPasses: on this kernel every incident gets its diagnosis,
// through the binary an operator runs, and nothing is left behind.
func TestLabSelftestPasses(t *testing.T) {
	testutil.NeedRoot(t, "snapdiag selftest (network namespaces)")
	t.Parallel()
	code, res := runSelftestJSON(t)
	var ran []string
	for _, i := range res.Incidents {
		ran = append(ran, i.Name)
		if i.Status != selftest.Pass {
			t.Errorf("%s: %s (%s): expected %+v, said %+v", i.Name, i.Status, i.Error, i.Expected, i.Said)
		}
	}
	if !slices.Equal(ran, selftest.Names()) {
		t.Errorf("ran %v, want every incident %v", ran, selftest.Names())
	}
	if code != exitOK || !res.Passed || res.Interrupted {
		t.Errorf("exit %d, passed %v, interrupted %v: want 0, true, false", code, res.Passed, res.Interrupted)
	}
	if res.Kernel == "" {
		t.Error("no kernel version")
	}
	assertNothingLeft(t, testutil.Snapdiag(t))
}

// TestLabSelftestWrongAnalyzer: with the rule that diagnoses a SYN queue
// overflow left out (the hidden --without-rule), the cookies-off flood is
// not diagnosed, and the self-test fails, exit 1, naming that incident.
func TestLabSelftestWrongAnalyzer(t *testing.T) {
	testutil.NeedRoot(t, "snapdiag selftest (network namespaces)")
	t.Parallel()
	code, res := runSelftestJSON(t, "--incident", "syn-flood-cookies-off", "--without-rule", "synqueue")
	if code != exitError || res.Passed {
		t.Errorf("exit %d, passed %v: want 1, false", code, res.Passed)
	}
	if got := res.Failed(); !slices.Equal(got, []string{"syn-flood-cookies-off"}) {
		t.Fatalf("failed incidents %v, want [syn-flood-cookies-off]", got)
	}
	// A fail, not an error: the flood happened and was captured, and the
	// diagnosis was wrong.
	if i := res.Incidents[0]; i.Status != selftest.Fail || i.Error != "" {
		t.Errorf("status %s (%s), want fail with no error", i.Status, i.Error)
	}
}

// TestLabSelftestSignal: SIGTERM in the middle of an incident ends the run
// at once, exit 1, marked interrupted, with the incident's namespaces
// deleted and its service process gone.
func TestLabSelftestSignal(t *testing.T) {
	testutil.NeedRoot(t, "snapdiag selftest (network namespaces)")
	t.Parallel()
	bin := testutil.Snapdiag(t)
	ctx, cancel := context.WithTimeout(context.Background(), selftestLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "selftest", "--format", "json", "--incident", "healthy-busy")
	cmd.Env = append(os.Environ(), runMark(t))
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("%s%d-", lab.Prefix, cmd.Process.Pid)
	// The service runs once the incident is under way.
	testutil.Eventually(t, 0, "the selftest's service to run", func() (bool, string) {
		p := childrenOf(t, bin)
		return len(p) > 0, fmt.Sprint(p)
	})
	if ns := namespacesWith(t, prefix); len(ns) == 0 {
		t.Fatalf("no namespace named %s* while the incident runs", prefix)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitError {
		t.Errorf("selftest after SIGTERM: %v, want exit %d", err, exitError)
	}
	var res selftest.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("decode the JSON: %v\n%s", err, stdout.String())
	}
	if !res.Interrupted || res.Passed {
		t.Errorf("interrupted %v, passed %v: want true, false", res.Interrupted, res.Passed)
	}
	if ns := namespacesWith(t, prefix); len(ns) != 0 {
		t.Errorf("namespaces left after SIGTERM: %v", ns)
	}
	assertNothingLeft(t, bin)
}

// TestSelftestNeedsRoot: without root the self-test says what it needs,
// exits 2 and creates nothing.
func TestSelftestNeedsRoot(t *testing.T) {
	testutil.NeedRoot(t, "running the selftest as another user")
	t.Parallel()
	// A copy that the unprivileged user may execute, in a directory it may
	// reach.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(testutil.Snapdiag(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "snapdiag")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), selftestLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "selftest")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("selftest as nobody: %v, want exit %d", err, exitUsage)
	}
	if ee.ExitCode() != exitUsage {
		t.Errorf("selftest as nobody: %v, want exit %d", err, exitUsage)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing: no incident ran", stdout.String())
	}
	if ns := namespacesWith(t, fmt.Sprintf("%s%d-", lab.Prefix, cmd.Process.Pid)); len(ns) != 0 {
		t.Errorf("namespaces created without root: %v", ns)
	}
}

// namespacesWith lists the lab namespaces whose names start with prefix.
func namespacesWith(t *testing.T, prefix string) []string {
	t.Helper()
	all, err := lab.Namespaces()
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(n string) bool { return !strings.HasPrefix(n, prefix) })
}

// runMark is an environment variable, unique to t, given to the selftest a
// test runs: its services inherit it, which tells them apart from those of
// the tests running in parallel.
func runMark(t *testing.T) string { return "SNAPDIAG_TEST_RUN=" + t.Name() }

// childrenOf lists the live processes running bin's selftest-service for
// t's selftest (see runMark).
func childrenOf(t *testing.T, bin string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || exe != bin {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cl), "\x00")
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if len(args) > 1 && args[1] == selftest.ServiceCommand && slices.Contains(strings.Split(string(env), "\x00"), runMark(t)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// assertNothingLeft fails t if a service of bin still runs: the self-test
// kills its children, by pid, before it exits.
func assertNothingLeft(t *testing.T, bin string) {
	t.Helper()
	if p := childrenOf(t, bin); len(p) > 0 {
		t.Errorf("services still running after the selftest: pids %v", p)
	}
}
