package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/snapdiag/snapdiag/internal/gobuild"
)

// Time limits for commands run in a namespace.
const (
	// DefaultExecTimeout bounds Exec when ctx has no deadline.
	DefaultExecTimeout = 30 * time.Second
	// MaxProcLifetime bounds a process started with Start when ctx has no
	// earlier deadline.
	MaxProcLifetime = 2 * time.Minute
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 2 * time.Second
)

// Output is what a command run by Exec printed, and how long it ran.
type Output struct {
	Stdout, Stderr []byte
	Duration       time.Duration
}

// nsCommand builds `ip netns exec ns name args...`. ip execs the command in
// place after setns (and after remounting /sys for the namespace), so the pid
// is the command's own and signals reach it directly. The command gets its own
// process group, which is what a timeout kills, and SIGKILL should the test
// process die first.
func (l *Lab) nsCommand(ns, name string, args ...string) (*exec.Cmd, error) {
	if err := l.checkNS(ns); err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// killGroup kills the process group of a command this package started (its
// pgid is its pid, from Setpgid).
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Exec runs name with args inside ns (via `ip netns exec`) and waits for it,
// for at most ctx's deadline or DefaultExecTimeout. On timeout the command's
// process group is killed. A non-zero exit is an error that carries the end
// of stderr; the output is returned either way.
//
// A test runs a binary it built (see Build) in the server namespace with
//
//	out, err := l.Exec(ctx, l.Server, bin, "capture", "--out", dir)
func (l *Lab) Exec(ctx context.Context, ns, name string, args ...string) (*Output, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultExecTimeout)
		defer cancel()
	}
	cmd, err := l.nsCommand(ns, name, args...)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = stopGrace
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, ns, err)
	}
	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waitc:
	case <-ctx.Done():
		killGroup(cmd)
		werr = <-waitc
		werr = fmt.Errorf("%w (%w)", ctx.Err(), werr)
	}
	out := &Output{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Duration: time.Since(start)}
	l.record("ip netns exec %s %s %s  # %v %s", ns, name, strings.Join(args, " "), out.Duration.Round(time.Millisecond), status(werr))
	if werr != nil {
		return out, fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), ns, werr, tail(stderr.Bytes(), 2000))
	}
	return out, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// Proc is a process started with Start inside a namespace.
type Proc struct {
	Cmd *exec.Cmd

	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
	once   sync.Once
}

// lockedWriter serialises writes into a Proc's buffers.
type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

// Write appends p under the Proc's lock.
func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Start starts name with args inside ns and returns without waiting. The
// process is killed when ctx ends, after MaxProcLifetime at the latest, and at
// the lab's cleanup.
func (l *Lab) Start(ctx context.Context, ns, name string, args ...string) (*Proc, error) {
	cmd, err := l.nsCommand(ns, name, args...)
	if err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	cmd.WaitDelay = stopGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, ns, err)
	}
	l.record("start in %s: %s %s  # pid %d", ns, name, strings.Join(args, " "), cmd.Process.Pid)
	life, cancel := context.WithTimeout(ctx, MaxProcLifetime)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	go func() {
		defer cancel()
		select {
		case <-p.done:
		case <-life.Done():
			killGroup(cmd)
		}
	}()
	if !l.onCleanup(func() { p.Stop() }) {
		p.Stop()
		return nil, fmt.Errorf("start %s in %s: lab is shutting down", name, ns)
	}
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Stdout returns what the process has printed to stdout so far.
func (p *Proc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

// Stderr returns what the process has printed to stderr so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Stop sends SIGTERM to the process, and SIGKILL to its process group if it
// has not exited after a grace period, then waits for it. It returns the exit
// error, which for a stopped process is usually "signal: terminated".
func (p *Proc) Stop() error {
	p.once.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			killGroup(p.Cmd)
			<-p.done
		}
	})
	<-p.done
	return p.err
}

// Build compiles the main package pkg (an import path, such as
// "github.com/snapdiag/snapdiag/cmd/snapdiag") into tb's temporary directory
// and returns the binary's path, for Exec and Start. The go command's build
// cache makes repeated builds cheap.
func Build(tb TB, pkg string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), filepath.Base(pkg))
	if err := gobuild.Build(out, pkg); err != nil {
		tb.Fatalf("lab: %v", err)
	}
	return out
}

// ServicePackage is the import path of the stand-in service Service runs.
const ServicePackage = "github.com/snapdiag/snapdiag/lab/cmd/labsvc"

// Service starts the stand-in service (package labsvc) inside the server
// namespace, listening on addr with an exact backlog and accept mode, and
// returns once it is listening (within DefaultExecTimeout). It runs
// Options.ServiceCommand, or else lab/cmd/labsvc, built once per lab.
// Stop ends it; a watchdog test restarts it by calling Service again.
func (l *Lab) Service(ctx context.Context, addr netip.AddrPort, backlog int, mode AcceptMode, opts ...ListenOption) (*Proc, error) {
	if a := addr.Addr(); !a.IsUnspecified() && a != l.ServerIP && (!a.IsValid() || a != l.ServerIP6) {
		return nil, fmt.Errorf("service on %s: not a server address of this lab", addr)
	}
	cmd, err := l.serviceCommand()
	if err != nil {
		return nil, fmt.Errorf("service on %s: %w", addr, err)
	}
	args := slices.Concat(cmd[1:], []string{"--listen", addr.String(), "--backlog", strconv.Itoa(backlog),
		"--accept", mode.String(), "--lifetime", MaxProcLifetime.String()})
	for _, o := range opts {
		args = append(args, "--"+string(o))
	}
	bin := cmd[0]
	p, err := l.Start(ctx, l.Server, bin, args...)
	if err != nil {
		return nil, err
	}
	err = WaitFor(l.Done(), DefaultExecTimeout, pollEvery, "labsvc to listen", func() (bool, string, error) {
		select {
		case <-p.Done():
			return false, "", fmt.Errorf("labsvc exited: %v: %s", p.Wait(), tail([]byte(p.Stderr()), 500))
		default:
		}
		return strings.HasPrefix(p.Stdout(), "listening "), fmt.Sprintf("stdout %q", p.Stdout()), nil
	})
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("service on %s: %w", addr, err)
	}
	return p, nil
}

// serviceCommand is the command line that runs labsvc: Options.ServiceCommand,
// or lab/cmd/labsvc built for the lab's test.
func (l *Lab) serviceCommand() ([]string, error) {
	if len(l.svcCmd) > 0 {
		return l.svcCmd, nil
	}
	if l.tb == nil {
		return nil, errors.New("a lab from Open needs Options.ServiceCommand to run a service")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.svcBin == "" {
		l.svcBin = Build(l.tb, ServicePackage)
	}
	return []string{l.svcBin}, nil
}
