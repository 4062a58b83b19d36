package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/ship"
	"github.com/snapdiag/snapdiag/watch"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// systemdEnv are the variables systemd sets for ExecStopPost= (SERVICE_RESULT,
// EXIT_CODE, EXIT_STATUS) and for OnFailure= units (MONITOR_*), recorded in
// the trigger so the bundle says how the service died.
var systemdEnv = []string{
	"SERVICE_RESULT", "EXIT_CODE", "EXIT_STATUS",
	"MONITOR_SERVICE_RESULT", "MONITOR_EXIT_CODE", "MONITOR_EXIT_STATUS", "MONITOR_UNIT",
	"INVOCATION_ID",
}

// captureCmdFlags are snapdiag capture's flags: the shared capture settings
// and those of a one-off capture.
type captureCmdFlags struct {
	captureFlags
	uploadFlags
	reason  string
	quiet   bool
	redact  bool
	keyFile string
	// priority is "low" (lower the process's own priority first thing) or
	// "normal" (keep the one it was started with).
	priority string
	// allNetNS adds every other network namespace of the host.
	allNetNS bool
}

func newCaptureCmd() *cobra.Command {
	var f captureCmdFlags
	cmd := &cobra.Command{
		Use:   "capture",
		Short: "Write one evidence bundle and print its path",
		Long: `Capture freezes the listen-path evidence into one .tar.zst bundle and prints
its path as the last line of stdout. It exits 0 whenever a bundle was written,
even if some collectors failed (the manifest says which and why), and non-zero
only when no bundle could be written.

It lowers its own priority first (nice 10, best-effort disk level 7; --priority
normal keeps the one it was started with) and records in the manifest the
priority it ran at, its CPU time and its peak memory.

With --upload s3://BUCKET/PREFIX or file:///DIR the bundle is sent to the
store after it is written (see snapdiag push), for at most --upload-timeout:
2s by default, since a capture is often part of a restart (ExecStopPost=)
and the restart must not wait for the network. A bundle the store did not
take by then stays in --out, marked pending (BUNDLE.pending), for snapdiag
push --pending (snapdiag-push@.timer) or a watch --upload on the same
--out; one line on stderr says why. The exit status is still 0, since the
bundle was written.

--netns NAME|PATH, --pid PID or --container ID capture another network
namespace (a container's, from the node): its listeners, queues, counters,
net.* sysctls, socket table and packets, read from a thread of snapdiag's
that enters it (CAP_SYS_ADMIN). The kernel log, system files and fs.* stay
the host's. Without CAP_SYS_ADMIN, --pid, --container and --netns (when a
process is in it) still capture the namespace's counters and /proc/net
files, through /proc/PID/net, and say what the bundle lacks; with no such
process, the bundle names the namespace and holds only the host's files.

Exit status:
  0  a bundle was written, even a partial one
  1  no bundle could be written
  2  usage error

Files:
  The bundle, DIR/snapdiag-HOST-YYYYMMDDTHHMMSSZ.tar.zst (mode 0600), holds the
  most important members first, so a bundle cut short keeps them:
  manifest.json          format, tool, host, kernel, trigger, flags used, and
                         each collector's status (ok, absent, failed, timeout)
  samples/NNN/           one counter sample each: proc/net/netstat, snmp,
                         sockstat, softnet_stat, dev, and listeners.json
                         (every listener's accept queue, backlog, SYN-RECV)
  proc/sys/, proc/net/   sysctls and /proc/net files, as the raw files
  processes.json         the listeners' processes and their file limits
  system/                uname, uptime, loadavg, meminfo, the kernel log's tail
  sockets/summary.json   socket counts by state, port and peer (never capped)
  sockets/tcp.jsonl      the TCP socket table, up to --socket-cap rows
  packets/sample.pcap    the packet sample, headers only unless --payload
  netns/INODE/           with --all-netns, each other network namespace of the
                         host: samples/NNN/ (netstat, snmp, listeners.json) and
                         its listen-path sysctls; the whole net.* tree,
                         sockets/ and packets/ for the few (at most 8) where
                         a listen-path problem showed or a --port listener
                         is. The manifest's "namespaces" lists them with
                         their owners.`,
		Example: `  snapdiag capture --port 143 --reason "imap health check failed"
  snapdiag capture --out /tmp --samples 5 --interval 500ms --sample 0
  snapdiag capture --container 3f2a9c1b7d4e --port 8080
  snapdiag capture --all-netns --reason "which pod is dropping SYNs?"`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCapture(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	f.captureFlags.register(fl)
	f.uploadFlags.register(fl, captureUploadTimeout)
	// --max-bytes was capture's name for the staging limit; watch's
	// --max-bytes is its retention limit, so both now say --stage-bytes and
	// the old spelling stays for existing scripts.
	fl.Var(&f.stageBytes, "max-bytes", "most bytes the capture may stage on disk")
	_ = fl.MarkDeprecated("max-bytes", "use --stage-bytes")
	fl.StringVar(&f.reason, "reason", "", "why the capture was taken, recorded in the manifest")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress on stderr")
	fl.BoolVar(&f.redact, "redact", false, "pseudonymise addresses and host names (as snapdiag redact) as members are written: nothing unredacted ever reaches the disk")
	fl.StringVar(&f.keyFile, "key-file", defaultKeyFile(), "with --redact, the redaction key (created, mode 0600, when missing)")
	fl.StringVar(&f.priority, "priority", "low", "low: run at nice 10 and the last best-effort disk level, so as not to compete with the service; normal: keep the priority snapdiag was started with")
	fl.BoolVar(&f.allNetNS, "all-netns", false, "also capture every other network namespace of the host (containers, pods, ip netns): listeners, counters and listen-path sysctls of each, full detail where a listen-path problem shows; needs root")
	return cmd
}

func runCapture(ctx context.Context, f captureCmdFlags, stdout, stderr io.Writer) error {
	if err := f.captureFlags.validate(); err != nil {
		return err
	}
	if f.allNetNS && !f.target.IsZero() {
		// --all-netns is every namespace; a flag naming one contradicts it.
		return usageError{errors.New("--all-netns captures every namespace: drop --netns, --pid or --container, or drop --all-netns")}
	}
	pusher, err := f.uploadFlags.validate()
	if err != nil {
		return err
	}
	var prio *collectors.LowPriority
	switch f.priority {
	case "low":
		// First thing, while the process has few threads: the ones the Go
		// runtime creates later inherit it.
		prio = collectors.LowerPriority()
	case "normal":
	default:
		return usageError{fmt.Errorf("--priority must be low or normal, not %q", f.priority)}
	}
	filter, err := captureFilter(f.redact, f.keyFile, stderr)
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// SIGINT or SIGTERM cut the capture short; the bundle is still written,
	// and its manifest names the signal.
	ctx, stop := stopOnSignal(ctx)
	defer stop()

	asked := f.deadline
	progress := !f.quiet && isTerminal(stderr)
	var mark *ship.CommitMark
	restoreGC := collectors.CaptureGC() // not the upload's
	res, err := captureLocked(ctx, f.captureFlags, stderr, func(opts *collectors.Options, target *netns.Target) {
		if pusher != nil {
			// The bundle is marked pending inside its commit, just
			// before it appears: a capture killed at any point never
			// leaves it unmarked, and only this capture's bundle is.
			mark = pusher.CommitMark()
			opts.BeforeCommit = mark.BeforeCommit
		}
		opts.Trigger = trigger(f.reason)
		opts.Filter = filter
		opts.Priority = prio
		opts.AllNetNS = f.allNetNS
		if progress {
			if target != nil {
				fmt.Fprintf(stderr, "snapdiag: capturing %s (netns %d) into %s (deadline %s)\n", target.NetNS.String(), target.NetNS.Inode, opts.Dir, asked)
			} else {
				fmt.Fprintf(stderr, "snapdiag: capturing into %s (deadline %s)\n", opts.Dir, asked)
			}
			opts.Progress = func(st bundle.CollectorStatus) {
				line := fmt.Sprintf("  %-8s %-10s %7.0fms", st.Status, st.Name, st.DurationMS)
				if st.Error != "" {
					line += "  " + st.Error
				}
				fmt.Fprintln(stderr, line)
			}
		}
	})
	restoreGC()
	if err != nil {
		if mark != nil {
			if err := mark.Abandon(); err != nil {
				fmt.Fprintf(stderr, "snapdiag: upload: %v\n", err)
			}
		}
		return err
	}
	m := res.Manifest
	var failed int
	for _, st := range m.Collectors {
		if st.Status == bundle.StatusFailed || st.Status == bundle.StatusTimeout {
			failed++
			if !progress {
				fmt.Fprintf(stderr, "snapdiag: %s %s: %s\n", st.Name, st.Status, st.Error)
			}
		}
	}
	if hint := privilegeHint(m); failed > 0 && hint != "" {
		fmt.Fprintln(stderr, "hint: "+hint)
	}
	switch {
	case m.StoppedBy == bundle.StoppedBySignal:
		fmt.Fprintf(stderr, "snapdiag: %s stopped the capture; the bundle holds what was collected before it\n", m.Signal)
	case m.DeadlineHit:
		fmt.Fprintf(stderr, "snapdiag: the %s deadline cut the capture; the bundle holds what was collected in time\n", asked)
	}
	fmt.Fprintln(stdout, res.Path)
	if pusher != nil {
		// The bundle is committed and its path printed; captureLocked has
		// freed the directory for the next capture while this one travels,
		// under its own deadline. The outcome goes to stderr: stdout holds
		// only the path.
		_ = uploadAfter(ctx, pusher, res.Path, mark, stderr, stderr)
	}
	return nil
}

// captureLocked runs one capture the way snapdiag capture does, for capture
// and for top's 'c': into --out (or the default directory), holding the
// directory's lock, within --deadline (the wait for the lock counts against
// it), in the namespace the flags name (openTarget, which tells stderr what
// it cannot read). set adds what the caller decides (trigger, filter,
// progress) to the options the flags describe; target is the namespace
// entered, nil for the process's own. Errors carry the hint the operator
// needs.
func captureLocked(ctx context.Context, f captureFlags, stderr io.Writer, set func(*collectors.Options, *netns.Target)) (collectors.Result, error) {
	dir, err := outputDir(f.out)
	if err != nil {
		return collectors.Result{}, err
	}
	// One capture at a time per directory, shared with snapdiag watch: a
	// systemd ExecStopPost= capture and a watchdog's capture of the same
	// incident must not both write at once. Waiting counts against the
	// deadline, at most half of it.
	start := time.Now()
	lock, err := watch.AcquireLock(ctx, dir, f.deadline/2)
	if err != nil {
		_, hint := lockHint(dir, err)
		return collectors.Result{}, hintError{err, hint}
	}
	defer lock.Release()
	// The wait is at most half the deadline, so what is left stays
	// positive (a zero deadline would mean the default).
	f.deadline = max(f.deadline-time.Since(start), f.deadline/2)
	opts := f.options(dir)
	target, err := openTarget(f, &opts, stderr)
	if err != nil {
		return collectors.Result{}, err
	}
	defer target.Close()
	set(&opts, target)
	res, err := collectors.Capture(ctx, opts)
	switch {
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		return res, hintError{err, "the filesystem of " + dir + " is full, even for a bundle without the socket table and packets: free space or capture into another --out"}
	case err != nil:
		return res, hintError{err, "check that --out is a writable directory with free space"}
	}
	return res, nil
}

// lockTrouble is what kept a capture from its directory's lock.
type lockTrouble int

const (
	lockOther    lockTrouble = iota
	lockHeld                 // another process holds it
	lockReadOnly             // the filesystem is read-only
	lockDenied               // this user may not create or open it
	lockSymlink              // a symlink sits at the lock's name
	lockStopped              // a signal ended the wait
)

// lockHint says what kept the capture from dir's lock, and the hint for it.
func lockHint(dir string, err error) (lockTrouble, string) {
	lock := filepath.Join(dir, watch.LockName)
	switch {
	case errors.Is(err, watch.ErrLocked):
		return lockHeld, "another snapdiag capture is writing into " + dir + "; its bundle holds this incident"
	case errors.Is(err, syscall.EROFS):
		return lockReadOnly, dir + " is on a read-only filesystem: capture into another --out"
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return lockDenied, "this user may not write " + lock + ": run as root or capture into another --out"
	case errors.Is(err, syscall.ELOOP):
		// The lock is opened with O_NOFOLLOW, which fails with ELOOP on a
		// symlink (open(2)).
		return lockSymlink, lock + " is a symlink, which snapdiag never follows: remove it, or capture into another --out"
	case errors.Is(err, context.Canceled):
		return lockStopped, ""
	}
	return lockOther, "check that --out is a writable directory"
}

// stopOnSignal returns a context cancelled by the first SIGINT or SIGTERM,
// with a collectors.StopSignal as its cause; after it the signals' default
// action returns, so a second one kills at once.
func stopOnSignal(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			sig, _ := s.(syscall.Signal)
			cancel(collectors.StopSignal{Signal: sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// privilegeHint is the one line that tells the operator how to see what this
// capture could not, or "" when privilege is not what it lacked. Root with a
// dropped capability set (systemd's CapabilityBoundingSet=, a container's
// defaults) is told which capability is missing, not to run as root.
func privilegeHint(m *bundle.Manifest) string {
	switch {
	case m.Host.EUID != 0:
		return "run as root (or grant CAP_NET_RAW and CAP_SYS_PTRACE) to capture the packet sample and the listeners' processes"
	case m.Collector("packets") != nil && m.Collector("packets").Status == bundle.StatusFailed &&
		!collectors.HasCap(m.Host, "CAP_NET_RAW"):
		return "this process runs as root without CAP_NET_RAW (a dropped capability set): grant it to capture the packet sample"
	}
	return ""
}

// trigger builds the manifest's trigger from --reason and systemd's environment.
func trigger(reason string) bundle.Trigger {
	t := bundle.Trigger{Reason: reason}
	for _, k := range systemdEnv {
		if v, ok := os.LookupEnv(k); ok {
			if t.Systemd == nil {
				t.Systemd = map[string]string{}
			}
			t.Systemd[k] = v
		}
	}
	if t.Reason == "" && t.Systemd != nil {
		if r := t.Systemd["SERVICE_RESULT"]; r != "" {
			t.Reason = "systemd: service result " + r
		} else if r := t.Systemd["MONITOR_SERVICE_RESULT"]; r != "" {
			t.Reason = "systemd: monitored unit " + t.Systemd["MONITOR_UNIT"] + " result " + r
		}
	}
	return t
}

// isTerminal reports whether w is a terminal: progress goes only there.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// outputDir is --out, or the default directory, created if missing. Of
// --out only the last component is created: a typo in a parent
// (/vat/lib/snapdiag) must not grow a tree at the filesystem's root.
func outputDir(out string) (string, error) {
	if out == "" {
		return collectors.DefaultDir(), nil
	}
	err := os.Mkdir(out, 0o700)
	switch {
	case err == nil || errors.Is(err, fs.ErrExist):
		return out, nil
	case errors.Is(err, fs.ErrNotExist):
		return "", hintError{fmt.Errorf("create %s: %w", out, err),
			"--out creates only its last component: create " + filepath.Dir(out) + " first"}
	}
	return "", fmt.Errorf("create %s: %w", out, err)
}
