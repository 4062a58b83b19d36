package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/watch"
	"github.com/spf13/cobra"
)

// Exit codes of watch --once beyond the shared ones (0 ok, 1 error, 2 usage):
// analyze's, by the worst finding's severity.
// exitRestartFailed is watch --once's own: the restart command failed
// (non-zero exit, not found, killed at --then-timeout), whatever the bundle
// says, because the service may still be down.
const (
	exitWarning       = 3
	exitCritical      = 4
	exitRestartFailed = 5
)

// minEvery is the shortest check interval: each cycle connects to the
// service and reads /proc, and a shorter one burns a core and fills the
// service's TIME_WAIT table without telling anything more.
const minEvery = 100 * time.Millisecond

// watchFlags are snapdiag watch's flags: the watchdog's own and, embedded,
// the capture settings it uses on every trigger.
type watchFlags struct {
	captureFlags
	uploadFlags
	uploadRetry  time.Duration
	checks       []string
	expect       string
	insecure     bool
	every        time.Duration
	timeout      time.Duration
	failures     int
	cooldown     time.Duration
	then         string
	thenTimeout  time.Duration
	reason       string
	once         bool
	history      time.Duration
	historyBytes watch.ByteSize
	lockWait     time.Duration
	keep         int
	maxBytes     watch.ByteSize
	minFree      watch.ByteSize
	logFormat    string
	logLevel     string

	metrics          string
	metricsListeners int
	webhook          string
	webhookMatch     string
	webhookTokenFile string
	webhookThen      bool

	// allNetNS watches every other network namespace (the node agent).
	allNetNS bool
	maxNetNS int

	// fillHistory fills the history at start-up (benchmarks).
	fillHistory bool
}

func newWatchCmd() *cobra.Command {
	f := watchFlags{
		historyBytes: watch.DefaultHistoryBytes,
		maxBytes:     watch.DefaultMaxBytes,
		minFree:      watch.DefaultMinFree,
	}
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Run health checks; on failure capture a bundle, then run the restart command",
		Long: `Watch runs health checks every --every. After --failures consecutive failed
checks it captures a bundle (the failed check and the last --history of
counter and listener samples go into it), then runs --then (the restart), then
waits out --cooldown, during which failures are logged but nothing is
captured or restarted.

Checks (repeat --check for several; a cycle fails when any fails):
  tcp://HOST:PORT   connect within --timeout; with --expect TEXT the server's
                    first line must contain TEXT (an IMAP server's "* OK")
  http://URL        GET, status below 400 within --timeout (redirects are
  https://URL       not followed; https verifies the certificate unless --insecure)
  exec:CMD          /bin/sh -c CMD exits 0 within --timeout (its process
                    group is killed at the timeout)

One capture at a time per --out directory (a lock on DIR/.snapdiag.lock; a
second capture waits --lock-wait, then is skipped). No capture when the
filesystem has less than --min-free available. After each capture, this
host's oldest bundles beyond --keep or --max-bytes are deleted; nothing else
in the directory is ever touched. The restart runs even when no bundle could
be written. SIGTERM and SIGINT stop the watch; a capture in progress is
finished within its --deadline.

Each bundle's path is printed on stdout; logs go to stderr.

With --upload s3://BUCKET/PREFIX or file:///DIR, each bundle is marked
pending (DIR/BUNDLE.pending) as soon as it is written and sent to the store
beside the checks, under its own --upload-timeout: the restart (--then)
never waits for it. A bundle the store did not take (down, slow, 5xx,
throttling, refused credentials) stays in --out, pending, and is sent again
after --upload-retry, each later wait twice as long up to 15m, with jitter,
until it is in; pending bundles an earlier run left are sent at start.
Retention deletes uploaded bundles first and a pending one only when --keep
or --max-bytes leave no other choice, logging it. With --once, the upload is
tried once after the restart; what is left is for snapdiag push --pending.
Credentials and endpoint: see snapdiag push --help.

--metrics ADDR serves http://ADDR/metrics for Prometheus, from the samples
the watch takes anyway: per listener (at most --metrics-listeners, the
fullest first) its accept queue and limit, SYN-RECV and SYN-queue limit,
and drops; the host's listen-path TcpExt counters and sysctls; each check's
up and latency; captures by result. With --metrics, --check is optional.

--webhook ADDR accepts Alertmanager's webhook (version 4) at
http://ADDR/alertmanager (ADDR may be the --metrics address). A firing alert
matching --webhook-match (Alertmanager's syntax, alertname=~"Snapdiag.*")
triggers a capture as a failed check would (same lock and cool-down; --then
only with --webhook-then), with the alert as the bundle's trigger. Off
loopback, --webhook-token-file is required: requests carry "Authorization:
Bearer TOKEN". Bodies over 1 MiB (413), more than one request a second
(503, which Alertmanager retries) and malformed payloads (400) capture
nothing; resolved alerts are ignored.

A bundle of this host in --out younger than --cooldown (from an earlier run
of the watch, or another watchdog's capture) starts the cool-down at
start-up, so restarting the watch does not capture the same incident twice.

--once runs one cycle, for timers and cron: up to --failures attempts
--every apart, stopping at the first pass. With --once, the cool-down is
judged by the newest bundle in --out: within it, the restart runs but no new
bundle is written.

--netns NAME|PATH, --pid PID or --container ID watch another network
namespace from the node: the checks run inside it (tcp://127.0.0.1:8080 is
its loopback, an exec: command starts in it), the samples and captures read
it, and a restarted container's new namespace is entered before the next
cycle ("watched namespace moved" in the log). It needs CAP_SYS_ADMIN; the
restart command runs on the host.

--all-netns is the node agent (deploy/kubernetes/daemonset.yaml runs it): it
watches every other network namespace of the host, at most --max-netns, each
pod's and the node's own, with no --check. Every --every it dumps each
namespace's LISTEN sockets (one sock_diag socket per namespace, opened
inside it once) and reads its listen-path counters; new and gone namespaces
are looked for every 10s. A namespace is sick when a listener's accept queue
is over its backlog, a listener's drop counter moved, or its TcpExt
ListenOverflows, ListenDrops, TCPReqQFullDrop or TCPReqQFullDoCookies rose;
after --failures sick cycles in a row it is captured as --netns would
capture it, with the listener and what was seen in the trigger and the
container and pod in the manifest. --cooldown is each namespace's own (a
bundle of it in --out younger than --cooldown starts it at start-up), and
at most 2 captures a minute are taken for the whole node, the longest-sick
namespace first. With --metrics, each listener's series carry the labels
netns, pod, namespace and container (at most --metrics-listeners, the
fullest accept queues first; no SYN-RECV series). It takes no --check,
--then, --once, --webhook, --netns, --pid or --container.

While --then runs, checks pause. --then-timeout bounds it (it must be
positive: there is no "no limit"); at the timeout its process group gets
SIGTERM, then SIGKILL 5s later. A stop signal (SIGTERM, SIGINT) stops a
running restart command the same way, and the watch exits 1, since the
service may be left stopped; a stop signal at any other time exits 0
(--once: always 1). A capture in progress is finished first.

Exit status:
Without --once: 0 when a stop signal ended the watch, 1 when one stopped a
running restart command or the watch itself failed, 2 usage error. With
--once, the first that applies:
  2  usage error
  1  SIGTERM or SIGINT stopped it
  5  a check failed and the restart command (--then) failed: it exited
     non-zero, could not be started, or was killed at --then-timeout
  4  a check failed and analyze's worst finding on the new bundle is
     critical; or no bundle was written because one is recent (cool-down) or
     another process holds the capture lock; or the bundle could not be
     analyzed
  3  a check failed and the worst finding is a warning, or nothing above
     info was found (a failed check never exits 0)
  1  a check failed and no bundle could be written (low space, capture
     error), or watch itself failed
  0  the checks passed

Files:
  DIR/.snapdiag.lock     held while a capture writes into --out (DIR)
  DIR/BUNDLE.pending     with --upload: the bundle is not in the store yet
  DIR/snapdiag-HOST-TIME.tar.zst
                         the bundles, this host's oldest deleted beyond --keep
                         or --max-bytes (members: see snapdiag-capture(1))`,
		Example: `  snapdiag watch --check tcp://127.0.0.1:143 --expect '* OK' --port 143 \
      --then 'systemctl restart dovecot'
  snapdiag watch --check https://localhost:8443/healthz --insecure --every 10s --failures 2
  snapdiag watch --once --check 'exec:pg_isready -q' --then 'systemctl restart postgresql'
  snapdiag watch --metrics 127.0.0.1:9917 --webhook 127.0.0.1:9917 \
      --webhook-match 'alertname=~"SnapdiagSyn.*"'
  snapdiag watch --container 3f2a9c1b7d4e --check tcp://127.0.0.1:8080 --port 8080
  snapdiag watch --all-netns --out /var/lib/snapdiag --log-format json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWatch(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	f.captureFlags.register(fl)
	f.uploadFlags.register(fl, defaultUploadTimeout)
	fl.DurationVar(&f.uploadRetry, "upload-retry", watch.DefaultUploadRetry, "first wait before sending a pending bundle again; each later wait doubles, up to 15m, with jitter")
	fl.StringArrayVar(&f.checks, "check", nil, "health check: tcp://HOST:PORT, http://URL, https://URL or exec:CMD (repeatable)")
	fl.StringVar(&f.expect, "expect", "", "text the first line from a tcp check's server must contain")
	fl.BoolVar(&f.insecure, "insecure", false, "do not verify https checks' certificates (self-signed)")
	fl.DurationVar(&f.every, "every", watch.DefaultEvery, "check interval, and the history's resolution (at least 100ms)")
	fl.DurationVar(&f.timeout, "timeout", watch.DefaultTimeout, "time limit of one check")
	fl.IntVar(&f.failures, "failures", watch.DefaultFailures, "consecutive failed checks that trigger a capture")
	fl.DurationVar(&f.cooldown, "cooldown", watch.DefaultCooldown, "after a trigger: failures are logged, nothing captured or restarted")
	fl.StringVar(&f.then, "then", "", "restart command, run with /bin/sh -c after the capture finished")
	fl.DurationVar(&f.thenTimeout, "then-timeout", watch.DefaultThenTimeout, "time limit of the restart command, positive (its process group gets SIGTERM, then SIGKILL 5s later)")
	fl.StringVar(&f.reason, "reason", "", "reason recorded in the bundle (default: the failed check and its error)")
	fl.BoolVar(&f.once, "once", false, "run one check cycle and exit by its result")
	fl.DurationVar(&f.history, "history", watch.DefaultHistory, "how much sample history to keep in memory for the bundle (0: none)")
	fl.Var(&f.historyBytes, "history-bytes", "memory bound of the history")
	fl.DurationVar(&f.lockWait, "lock-wait", watch.DefaultLockWait, "how long to wait for another capture into --out before skipping")
	fl.IntVar(&f.keep, "keep", watch.DefaultKeep, "bundles of this host to keep in --out (0: no limit)")
	fl.Var(&f.maxBytes, "max-bytes", "total size of this host's bundles to keep in --out (0: no limit)")
	fl.Var(&f.minFree, "min-free", "do not capture when --out's filesystem has less free space (0: no limit)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "least log level: debug, info, warn or error")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (HOST:PORT)")
	fl.IntVar(&f.metricsListeners, "metrics-listeners", watch.DefaultMetricsListeners, "most listeners in the metrics, the fullest first")
	fl.StringVar(&f.webhook, "webhook", "", "accept Alertmanager webhooks at http://ADDR"+watch.WebhookPath+" (HOST:PORT; may be the --metrics address)")
	fl.StringVar(&f.webhookMatch, "webhook-match", "", `alerts that trigger a capture, in Alertmanager's matcher syntax: alertname=~"Snapdiag.*",instance="HOST:PORT" (default: every firing alert)`)
	fl.StringVar(&f.webhookTokenFile, "webhook-token-file", "", "file holding the bearer token webhook requests must carry (required unless --webhook is on loopback)")
	fl.BoolVar(&f.webhookThen, "webhook-then", false, "run --then after an alert's capture too")
	fl.BoolVar(&f.allNetNS, "all-netns", false, "watch every other network namespace of the host (pods, containers, ip netns) by its listeners' queues and drops, capturing the sick one; no --check (the node agent); needs root")
	fl.IntVar(&f.maxNetNS, "max-netns", collectors.DefaultMaxNetNS, "with --all-netns: most namespaces watched (each holds 2 descriptors)")
	fl.BoolVar(&f.fillHistory, "fill-history", false, "fill the history with back-to-back samples at start (benchmarks)")
	_ = fl.MarkHidden("fill-history")
	return cmd
}

func (f watchFlags) validate() error {
	if err := f.validateAllNetNS(); err != nil {
		return err
	}
	switch {
	case len(f.checks) == 0 && !f.allNetNS && f.metrics == "" && f.webhook == "":
		return usageError{errors.New("watch needs at least one --check, or --metrics or --webhook")}
	case f.once && (f.metrics != "" || f.webhook != ""):
		return usageError{errors.New("--once runs one cycle: it serves neither --metrics nor --webhook")}
	case f.metricsListeners < 1:
		return usageError{fmt.Errorf("--metrics-listeners must be at least 1, not %d", f.metricsListeners)}
	case f.webhook == "" && (f.webhookMatch != "" || f.webhookTokenFile != "" || f.webhookThen):
		return usageError{errors.New("--webhook-match, --webhook-token-file and --webhook-then need --webhook")}
	case f.webhook != "" && f.webhookTokenFile == "" && !watch.IsLoopback(f.webhook):
		return usageError{fmt.Errorf("--webhook %s is not on loopback: give --webhook-token-file", f.webhook)}
	case f.every < minEvery:
		return usageError{fmt.Errorf("--every must be at least %v, not %v", minEvery, f.every)}
	case f.timeout <= 0:
		return usageError{errors.New("--timeout must be positive")}
	case f.failures < 1 || f.failures > 1000:
		return usageError{fmt.Errorf("--failures must be between 1 and 1000, not %d", f.failures)}
	case f.cooldown < 0 || f.history < 0 || f.lockWait < 0:
		return usageError{errors.New("--cooldown, --history and --lock-wait must not be negative")}
	case f.thenTimeout <= 0:
		// A restart command always has a time limit: 0 is refused rather
		// than read as "none" or as the default.
		return usageError{fmt.Errorf("--then-timeout must be positive, not %v", f.thenTimeout)}
	case f.keep < 0:
		return usageError{errors.New("--keep must not be negative")}
	case f.logFormat != "text" && f.logFormat != "json":
		return usageError{fmt.Errorf("--log-format %q: want text or json", f.logFormat)}
	case f.uploadRetry <= 0:
		return usageError{errors.New("--upload-retry must be positive")}
	}
	return f.captureFlags.validate()
}

// validateAllNetNS refuses what --all-netns cannot mean: a namespace named
// beside every namespace (as capture does), a check or a restart command
// for every pod of the node, one cycle, and the webhook (not per namespace
// yet).
func (f watchFlags) validateAllNetNS() error {
	if !f.allNetNS {
		if f.maxNetNS != collectors.DefaultMaxNetNS {
			return usageError{errors.New("--max-netns needs --all-netns")}
		}
		return nil
	}
	switch {
	case !f.target.IsZero():
		return usageError{errors.New("--all-netns watches every namespace: drop --netns, --pid or --container, or drop --all-netns")}
	case len(f.checks) > 0:
		return usageError{errors.New("--all-netns judges every listener by its queues and drops: it takes no --check (watch one namespace's service with --netns, --pid or --container)")}
	case f.then != "":
		return usageError{errors.New("--all-netns watches every pod of the node: one restart command (--then) cannot fit them all; the kubelet's probes restart pods")}
	case f.once:
		return usageError{errors.New("--all-netns runs until stopped: for one look at every namespace, run snapdiag capture --all-netns")}
	case f.webhook != "":
		return usageError{errors.New("--all-netns does not take alerts (--webhook) yet")}
	case f.maxNetNS < 1:
		return usageError{fmt.Errorf("--max-netns must be at least 1, not %d", f.maxNetNS)}
	}
	return nil
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func runWatch(ctx context.Context, f watchFlags, stdout, stderr io.Writer) error {
	if err := f.validate(); err != nil {
		return err
	}
	log, err := newLogger(f.logFormat, f.logLevel, stderr)
	if err != nil {
		return err
	}
	var checks []*watch.Check
	for _, spec := range f.checks {
		c, err := watch.ParseCheck(spec, watch.CheckOptions{Timeout: f.timeout, Expect: f.expect, Insecure: f.insecure})
		if err != nil {
			return usageError{err}
		}
		checks = append(checks, c)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal the default action returns: a second
		// SIGINT kills at once.
		<-ctx.Done()
		stop()
	}()

	pusher, err := f.uploadFlags.validate()
	if err != nil {
		return err
	}
	dir, err := outputDir(f.out)
	if err != nil {
		return err
	}
	opts := f.options(dir)
	if len(opts.Host.Ports) == 0 {
		// Without --port, the packet sample focuses on the checked services,
		// so it holds their clients' ACKs, not only SYN, FIN and RST.
		for _, c := range checks {
			if p := c.Port(); p != 0 && !slices.Contains(opts.Host.Ports, p) {
				opts.Host.Ports = append(opts.Host.Ports, p)
			}
		}
	}
	var metrics *watch.Metrics
	if f.metrics != "" {
		v, _ := buildInfo()
		metrics = watch.NewMetrics(watch.MetricsConfig{MaxListeners: f.metricsListeners, Version: v, ListenerLabels: targetLabels(f.target), PerNetNS: f.allNetNS})
	}
	hook, err := f.webhookConfig()
	if err != nil {
		return err
	}
	w, err := watch.New(watch.Config{
		Metrics:      metrics,
		Webhook:      hook,
		Checks:       checks,
		Every:        f.every,
		Failures:     f.failures,
		Cooldown:     f.cooldown,
		Then:         f.then,
		ThenTimeout:  f.thenTimeout,
		Reason:       f.reason,
		History:      f.history,
		HistoryBytes: int(f.historyBytes),
		LockWait:     f.lockWait,
		Retention:    watch.Retention{Keep: f.keep, MaxBytes: int64(f.maxBytes), MinFree: int64(f.minFree)},
		Capture:      opts,
		Logger:       log,
		Bundles:      stdout,
		ThenOutput:   stderr,
		Upload:       pusher,
		UploadRetry:  f.uploadRetry,
		Target:       f.target,
		AllNetNS:     f.allNetNS,
		MaxNetNS:     f.maxNetNS,
	})
	var terr *watch.TargetError
	switch {
	case errors.As(err, &terr):
		return hintError{err, "run as root (watch enters the namespace with CAP_SYS_ADMIN); ip netns list, lsns -t net and crictl ps name the namespaces and containers"}
	case err != nil:
		return usageError{err}
	}
	defer w.Close()
	if f.fillHistory {
		start := time.Now()
		w.FillHistory(ctx, int(max(f.history/f.every, 1)))
		log.Info("history filled", "samples", w.History().Len(), "bytes", w.History().Bytes(),
			"took", time.Since(start).Round(time.Millisecond).String())
	}
	if !f.once {
		stopServe, err := serveWatch(ctx, f, metrics, w.Webhook(), log)
		if err != nil {
			return err
		}
		defer stopServe()
		return w.Run(ctx)
	}
	inc := w.Once(ctx)
	switch {
	case ctx.Err() != nil:
		// Stopped: whatever was captured, the cycle did not run its course
		// (the restart was cut, or not run).
		return exitStatus(exitError)
	case inc == nil:
		return nil
	}
	code := onceExitCode(inc, log)
	if inc.ThenErr != nil {
		// The restart failed: whatever the evidence says, the service may
		// still be down, and that is what the caller must act on.
		return exitStatus(exitRestartFailed)
	}
	return exitStatus(code)
}

// onceExitCode maps a --once incident to the exit code documented in the
// command's help, logging the analysis of the bundle it wrote.
func onceExitCode(inc *watch.Incident, log *slog.Logger) int {
	if inc.Bundle == "" {
		if errors.Is(inc.CaptureErr, watch.ErrLocked) || errors.Is(inc.CaptureErr, watch.ErrRecentBundle) {
			return exitCritical
		}
		return exitError
	}
	r, err := analyzeBundle(inc.Bundle)
	if err != nil {
		// The check failed all the same.
		log.Error("analyze the new bundle", "path", inc.Bundle, "error", err.Error())
		return exitCritical
	}
	var ids []string
	for _, f := range r.Findings {
		if f.Severity > analyze.Info {
			ids = append(ids, f.ID+" "+f.Severity.String()+" "+f.Listener)
		}
	}
	log.Info("analysis", "path", inc.Bundle, "verdict", r.Verdict, "findings", ids)
	if code := analyze.ExitCode(r); code != analyze.ExitOK {
		return code
	}
	// The evidence shows nothing above info, but the check did fail: a
	// failed check never exits 0.
	return exitWarning
}

// analyzeBundle runs analyze's rules on the bundle at path.
func analyzeBundle(path string) (*analyze.Report, error) {
	s, err := analyze.LoadBundle(path)
	if err != nil {
		return nil, err
	}
	return analyze.Analyze(s, path, analyze.Rules()), nil
}

// targetLabels are the per-listener metric labels that name the watch's
// target namespace: the container and the Kubernetes pod that own it, or
// the namespace as named. Nil when the watch reads its own namespace, or
// when the target cannot be resolved (watch.New then says why).
func targetLabels(spec netns.Spec) map[string]string {
	if spec.IsZero() {
		return nil
	}
	n, err := netns.Resolve("/proc", spec)
	if err != nil {
		return nil
	}
	labels := map[string]string{"netns": n.String()}
	if o := n.Owner; o != nil {
		labels["container"] = cmp.Or(o.Name, bundle.ShortID(o.ContainerID))
		if p := o.Pod; p != nil {
			labels["pod"], labels["namespace"] = p.Name, p.Namespace
		}
	}
	return labels
}
