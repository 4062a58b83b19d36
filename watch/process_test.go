package watch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/internal/testutil"
)

func TestLockInProcess(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first, err := AcquireLock(ctx, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file: a second open conflicts even in
	// the same process. The waiter retries every lockPoll on the clock and
	// gives up when the whole wait has passed, not before.
	clock := testutil.NewClock(time.Now())
	const wait = 4 * lockPoll
	type acquired struct {
		l   *Lock
		err error
	}
	res := make(chan acquired, 1)
	go func() {
		l, err := acquireLock(ctx, dir, wait, clock)
		res <- acquired{l, err}
	}()
	for range wait / lockPoll {
		clock.Step(t, lockPoll)
	}
	var got acquired
	select {
	case got = <-res:
	case <-time.After(testutil.WaitLimit):
		t.Fatalf("the waiter still waits after the whole %v lock wait", wait)
	}
	if !errors.Is(got.err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", got.err)
	}
	if !strings.Contains(got.err.Error(), "pid ") {
		t.Errorf("error %q does not name the holder", got.err)
	}
	// Released while another waits: the waiter gets it at its next retry.
	go func() {
		l, err := acquireLock(ctx, dir, time.Hour, clock)
		res <- acquired{l, err}
	}()
	clock.BlockUntil(t, 1)
	first.Release()
	clock.Advance(lockPoll)
	got = <-res
	if got.err != nil {
		t.Fatalf("lock after release: %v", got.err)
	}
	got.l.Release()

	// A symlink planted at the lock's name is not followed.
	evil := t.TempDir()
	target := filepath.Join(evil, "victim")
	put(t, evil, "victim", 5)
	if err := os.Symlink(target, filepath.Join(evil, LockName)); err != nil {
		t.Fatal(err)
	}
	if l, err := AcquireLock(ctx, evil, 0); err == nil {
		l.Release()
		t.Error("lock through a symlink succeeded")
	}
	if info, err := os.Stat(target); err != nil || info.Size() != 5 {
		t.Errorf("symlink target changed: %v", err)
	}
}

// TestLockTwoProcesses: two watchdogs that fire together into one directory
// write one bundle: the second waits --lock-wait, then skips and says so.
func TestLockTwoProcesses(t *testing.T) {
	bin := testutil.Snapdiag(t)
	dir := t.TempDir()
	args := []string{"watch", "--once", "--check", "exec:false", "--failures", "1", "--cooldown", "0",
		"--lock-wait", "300ms", "--samples", "6", "--interval", "500ms", "--sample", "0",
		"--out", dir, "--log-format", "json", "--min-free", "0"}
	type result struct {
		code   int
		stderr string
	}
	var wg sync.WaitGroup
	results := make([]result, 2)
	cmds := make([]*exec.Cmd, 2)
	errbufs := make([]*bytes.Buffer, 2)
	for i := range cmds {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		cmds[i] = exec.CommandContext(ctx, bin, args...)
		errbufs[i] = &bytes.Buffer{}
		cmds[i].Stderr = errbufs[i]
	}
	// Start both before waiting for either: the capture takes at least 2.5 s
	// (six samples 500ms apart), far longer than the two starts are apart.
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			err := c.Wait()
			var ee *exec.ExitError
			code := 0
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				code = -1
			}
			results[i] = result{code, errbufs[i].String()}
		})
	}
	wg.Wait()

	if got := bundlesIn(t, dir); len(got) != 1 {
		t.Errorf("bundles %v, want exactly 1", got)
	}
	written, skipped := 0, 0
	for i, r := range results {
		lines := logLines(t, r.stderr)
		w := countMsg(lines, "bundle written")
		written += w
		for _, l := range lines {
			if l["msg"] == "no bundle written" && strings.Contains(l["error"].(string), ErrLocked.Error()) {
				skipped++
			}
		}
		// The writer exits by analyze's verdict on its bundle (3 or 4, never
		// 0 for a failed check); the one that skipped exits 4.
		if w == 1 && r.code != 3 && r.code != 4 || w == 0 && r.code != 4 {
			t.Errorf("process %d (wrote %d) exited %d", i, w, r.code)
		}
	}
	if written != 1 || skipped != 1 {
		t.Errorf("%d processes wrote a bundle and %d skipped on the lock, want 1 and 1\n%s\n%s",
			written, skipped, results[0].stderr, results[1].stderr)
	}
}

// lineReader collects a process's stderr lines and lets a test wait for one.
type lineReader struct {
	mu    sync.Mutex
	lines []string
	ch    chan string
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{ch: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.mu.Lock()
			lr.lines = append(lr.lines, sc.Text())
			lr.mu.Unlock()
			select {
			case lr.ch <- sc.Text():
			default:
			}
		}
		close(lr.ch)
	}()
	return lr
}

func (lr *lineReader) String() string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return strings.Join(lr.lines, "\n")
}

// waitFor returns when a line containing s arrives, failing the test after
// timeout or at the end of the stream.
func (lr *lineReader) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-lr.ch:
			if !ok {
				t.Fatalf("stream ended before %q:\n%s", s, lr.String())
			}
			if strings.Contains(line, s) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within %v:\n%s", s, timeout, lr.String())
		}
	}
}

// startWatch starts the snapdiag binary's watch with args, killed after
// limit, its stdout into stdout (when not nil) and its stderr lines in the
// lineReader it returns.
func startWatch(t *testing.T, limit time.Duration, stdout io.Writer, args ...string) (*exec.Cmd, *lineReader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, testutil.Snapdiag(t), append([]string{"watch"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, newLineReader(stderr)
}

// TestSignalDuringCapture: SIGTERM in the middle of a capture lets it finish
// (a whole bundle is written), does not run the restart, and exits 0.
func TestSignalDuringCapture(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "restarted")
	var stdout bytes.Buffer
	cmd, lr := startWatch(t, 30*time.Second, &stdout, "--check", "exec:false", "--failures", "1", "--every", "100ms",
		"--samples", "5", "--interval", "400ms", "--sample", "0", "--deadline", "10s",
		"--then", "touch "+marker, "--out", dir, "--log-format", "json", "--min-free", "0")
	// The trigger is logged as the capture starts, and the capture takes
	// about 1.6 s (five samples 400ms apart): a signal sent now lands in it.
	lr.waitFor(t, "triggered: capturing", 10*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range lr.ch { // drain to EOF before Wait closes the pipe
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, lr.String())
	}
	got := bundlesIn(t, dir)
	if len(got) != 1 {
		t.Fatalf("bundles %v, want 1\n%s", got, lr.String())
	}
	m := manifestOf(t, testutil.ReadBundle(t, filepath.Join(dir, got[0])))
	if m.DeadlineHit {
		t.Errorf("the signal cut the capture: %+v", m.Collectors)
	}
	if strings.TrimSpace(stdout.String()) != filepath.Join(dir, got[0]) {
		t.Errorf("stdout %q, want the bundle path", stdout.String())
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the restart ran after the stop signal")
	}
	lines := logLines(t, lr.String())
	if countMsg(lines, "stopping: restart command not run") != 1 || countMsg(lines, "stopping") != 1 {
		t.Errorf("stop not logged:\n%s", lr.String())
	}
}

// TestSignalDuringRestart: SIGTERM while the restart command runs stops the
// watch at once: the command's process group gets SIGTERM (SIGKILL after
// thenGrace), and the watch exits 1, because a restart cut short may leave
// the service down.
func TestSignalDuringRestart(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	cmd, lr := startWatch(t, 60*time.Second, nil, "--check", "exec:false", "--failures", "1", "--every", "1s",
		"--samples", "1", "--sample", "0", "--deadline", "5s", "--history", "0",
		"--then", "sleep 100000 & echo $! > "+pidFile+".tmp && mv "+pidFile+".tmp "+pidFile+"; wait",
		"--out", t.TempDir(), "--log-format", "json", "--min-free", "0")
	var pid int
	testutil.Eventually(t, 0, "the restart command's sleep", func() (bool, string) {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false, err.Error()
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil, string(b)
	})
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		for range lr.ch { // drain to EOF before Wait closes the pipe
		}
		exited <- cmd.Wait()
	}()
	var err error
	select {
	case err = <-exited:
	case <-time.After(thenGrace + 10*time.Second):
		t.Fatalf("watch still running %v after SIGTERM while its restart command ran:\n%s", thenGrace+10*time.Second, lr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit %v, want status 1 (a restart cut short)\n%s", err, lr.String())
	}
	// The sleep was the shell's child, reparented and reaped once the shell
	// died: it is gone when kill(pid, 0) says there is no such process.
	testutil.Eventually(t, 0, "the restart command's sleep to be gone", func() (bool, string) {
		err := syscall.Kill(pid, 0)
		return errors.Is(err, syscall.ESRCH), fmt.Sprint(err)
	})
	if lines := logLines(t, lr.String()); countMsg(lines, "restart command interrupted") != 1 {
		t.Errorf("the interrupted restart is not logged:\n%s", lr.String())
	}
}
