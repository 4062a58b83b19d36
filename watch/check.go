package watch

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// Kind is what a health check does.
type Kind string

// Check kinds, as they appear in --check and in the manifest's trigger.
const (
	KindTCP   Kind = "tcp"   // connect, optionally read a greeting
	KindHTTP  Kind = "http"  // GET, status below 400
	KindHTTPS Kind = "https" // GET over TLS, status below 400
	KindExec  Kind = "exec"  // run a command, exit status 0
)

// Check results as the manifest records them (bundle.Check.Result).
const (
	ResultOK      = "ok"
	ResultFailed  = "failed"
	ResultTimeout = "timeout"
)

// greetingMax bounds what a tcp check reads while waiting for its greeting.
const greetingMax = 4 << 10

// bodyMax bounds what an http check reads of a response body before closing
// it; the status line is what counts.
const bodyMax = 64 << 10

// outputTail is how much of an exec check's output is kept for its error.
const outputTail = 512

// CheckOptions are the settings shared by every check of a watch.
type CheckOptions struct {
	// Timeout bounds one run of the check, connect and greeting or response
	// included.
	Timeout time.Duration
	// Expect, for tcp checks, is text the server's first line must contain
	// (an IMAP server's "* OK", an SMTP server's "220").
	Expect string
	// Insecure skips TLS certificate verification for https checks (a
	// self-signed certificate on a private service).
	Insecure bool
}

// Check is one health check, parsed from its --check spec and ready to run.
type Check struct {
	Kind Kind
	// Target is what the check talks to: HOST:PORT for tcp, the URL (with any
	// password redacted) for http and https, the command for exec.
	Target string
	Opts   CheckOptions

	spec   string
	client *http.Client
	// ns is the namespace the check runs in, set by the Watcher of a
	// watch --netns, --pid or --container; nil runs it in this process's.
	ns *nsRef
}

// ParseCheck parses a --check spec: tcp://HOST:PORT, http://..., https://...
// or exec:CMD.
func ParseCheck(spec string, opts CheckOptions) (*Check, error) {
	if opts.Timeout <= 0 {
		return nil, fmt.Errorf("check %q: timeout must be positive", spec)
	}
	c := &Check{Opts: opts, spec: spec}
	switch {
	case strings.HasPrefix(spec, "exec:"):
		c.Kind, c.Target = KindExec, strings.TrimSpace(strings.TrimPrefix(spec, "exec:"))
		if c.Target == "" {
			return nil, fmt.Errorf("check %q: exec: needs a command", spec)
		}
	case strings.HasPrefix(spec, "tcp://"):
		c.Kind, c.Target = KindTCP, strings.TrimSuffix(strings.TrimPrefix(spec, "tcp://"), "/")
		host, port, err := net.SplitHostPort(c.Target)
		if err != nil {
			return nil, fmt.Errorf("check %q: want tcp://HOST:PORT: %w", spec, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
			return nil, fmt.Errorf("check %q: want tcp://HOST:PORT with a numeric port", spec)
		}
	case strings.HasPrefix(spec, "http://"), strings.HasPrefix(spec, "https://"):
		u, err := url.Parse(spec)
		if err != nil {
			return nil, fmt.Errorf("check %q: %w", spec, err)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("check %q: no host", spec)
		}
		c.Kind, c.Target = Kind(u.Scheme), u.Redacted()
		c.client = newHTTPClient(opts, c.dial)
	default:
		return nil, fmt.Errorf("check %q: want tcp://HOST:PORT, http://URL, https://URL or exec:CMD", spec)
	}
	if opts.Expect != "" && c.Kind != KindTCP {
		// --expect is shared; it only means something to tcp checks.
		c.Opts.Expect = ""
	}
	return c, nil
}

// newHTTPClient makes the client of one http(s) check: a fresh connection
// every time (a kept-alive connection would hide a listener that no longer
// accepts), no proxy from the environment (the check is about this host's
// service, not the proxy), no redirects followed (a 3xx is an answer, and
// below 400), and normal certificate verification unless Insecure.
func newHTTPClient(opts CheckOptions, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DisableKeepAlives:   true,
		DisableCompression:  true,
		TLSHandshakeTimeout: opts.Timeout,
		MaxIdleConns:        -1,
		ForceAttemptHTTP2:   false,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: opts.Insecure}, //nolint:gosec // --insecure asks for it
		DialContext:         dial,
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// String is the check as it was given.
func (c *Check) String() string {
	if c.Kind == KindHTTP || c.Kind == KindHTTPS {
		return c.Target
	}
	return c.spec
}

// Result is the outcome of one run of a check.
type Result struct {
	Check   *Check
	OK      bool
	Err     error
	Latency time.Duration
	// Detail says what was seen when the check passed: "connected",
	// "HTTP 204", "exit 0", the greeting's first line.
	Detail string
}

// Status is ResultOK, ResultTimeout (the check ran out of time) or
// ResultFailed.
func (r Result) Status() string {
	switch {
	case r.OK:
		return ResultOK
	case isTimeout(r.Err):
		return ResultTimeout
	default:
		return ResultFailed
	}
}

// Manifest is the result as the bundle's trigger records it.
func (r Result) Manifest() *bundle.Check {
	c := &bundle.Check{
		Kind:      string(r.Check.Kind),
		Target:    r.Check.Target,
		Result:    r.Status(),
		LatencyMS: float64(r.Latency.Microseconds()) / 1000,
	}
	if r.Err != nil {
		c.Error = r.Err.Error()
	}
	return c
}

func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errTimeout is wrapped by an exec check whose command outlived the timeout.
var errTimeout = errors.New("timed out")

// Run runs the check once, bounded by its timeout and by ctx.
func (c *Check) Run(ctx context.Context) Result {
	ctx, cancel := context.WithTimeout(ctx, c.Opts.Timeout)
	defer cancel()
	start := time.Now()
	var detail string
	var err error
	switch c.Kind {
	case KindTCP:
		detail, err = c.runTCP(ctx)
	case KindHTTP, KindHTTPS:
		detail, err = c.runHTTP(ctx)
	case KindExec:
		detail, err = c.runExec(ctx)
	default:
		err = fmt.Errorf("unknown check kind %q", c.Kind)
	}
	return Result{Check: c, OK: err == nil, Err: err, Latency: time.Since(start), Detail: detail}
}

// dial connects to addr over TCP, from inside the check's namespace when it
// has one.
func (c *Check) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if th := c.ns.thread(); th != nil {
		return dialIn(ctx, th, addr)
	}
	d := net.Dialer{Timeout: c.Opts.Timeout}
	return d.DialContext(ctx, network, addr)
}

func (c *Check) runTCP(ctx context.Context) (string, error) {
	conn, err := c.dial(ctx, "tcp", c.Target)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", c.Target, err)
	}
	defer conn.Close()
	if c.Opts.Expect == "" {
		return "connected", nil
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetReadDeadline(dl); err != nil {
			return "", fmt.Errorf("set deadline on %s: %w", c.Target, err)
		}
	}
	// The greeting's first line decides: a service that answers "* BYE" or
	// "421" fails at once instead of at the timeout.
	buf := make([]byte, 0, 256)
	chunk := make([]byte, 256)
	for len(buf) < greetingMax && !bytes.Contains(buf, []byte{'\n'}) {
		n, err := conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("read greeting from %s after %q: %w", c.Target, buf, err)
		}
	}
	line, _, _ := bytes.Cut(buf, []byte{'\n'})
	line = bytes.TrimRight(line, "\r")
	if !bytes.Contains(line, []byte(c.Opts.Expect)) {
		return "", fmt.Errorf("greeting from %s is %q, want it to contain %q", c.Target, line, c.Opts.Expect)
	}
	return string(line), nil
}

func (c *Check) runHTTP(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.spec, nil)
	if err != nil {
		return "", fmt.Errorf("request %s: %w", c.Target, err)
	}
	req.Header.Set("User-Agent", "snapdiag-watch")
	resp, err := c.client.Do(req)
	if err != nil {
		// The client's error repeats the URL; say it once, redacted.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("get %s: %w", c.Target, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, bodyMax))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return "", fmt.Errorf("get %s: status %s", c.Target, resp.Status)
	}
	return "HTTP " + strconv.Itoa(resp.StatusCode), nil
}

func (c *Check) runExec(ctx context.Context) (string, error) {
	out := &tailBuffer{max: outputTail}
	err := runShellIn(ctx, c.ns.thread(), c.Target, 0, nil, out, out)
	if err != nil {
		if tail := strings.TrimSpace(out.String()); tail != "" {
			return "", fmt.Errorf("%w: %s", err, tail)
		}
		return "", err
	}
	return "exit 0", nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// Port is the TCP port the check talks to (tcp, http and https, with the
// scheme's default), or 0 for exec checks and targets without one. The
// watchdog focuses the packet sample on these ports when --port is not
// given: only then does the sample hold the clients' ACKs, which tell a
// half-open handshake from a completed one.
func (c *Check) Port() int {
	var hostport string
	switch c.Kind {
	case KindTCP:
		hostport = c.Target
	case KindHTTP, KindHTTPS:
		u, err := url.Parse(c.Target)
		if err != nil {
			return 0
		}
		if p := u.Port(); p != "" {
			hostport = u.Host
		} else if c.Kind == KindHTTPS {
			return 443
		} else {
			return 80
		}
	default:
		return 0
	}
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return 0
	}
	return n
}
