package watch

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/internal/testutil"
)

// greetingServer accepts on 127.0.0.1 and writes greeting to every client
// (nothing when greeting is empty), then holds the connection until the
// client closes it.
func greetingServer(t *testing.T, greeting string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if greeting != "" {
					c.Write([]byte(greeting))
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				var b [64]byte
				for {
					if _, err := c.Read(b[:]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCheckKinds(t *testing.T) {
	imap := greetingServer(t, "* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n")
	bye := greetingServer(t, "* BYE too many connections\r\n")
	silent := greetingServer(t, "")
	refused := closedPort(t)

	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/gone", http.StatusFound) })
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})
	plain := httptest.NewServer(mux)
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewTLSServer(mux)
	t.Cleanup(tlsSrv.Close)

	// Checks that must pass or fail on their own get a generous timeout (a
	// loaded CI machine loads the system's roots slowly); the ones that must
	// time out get a short one.
	const (
		timeout = 500 * time.Millisecond
		ample   = 5 * time.Second
	)
	tests := []struct {
		name     string
		spec     string
		opts     CheckOptions
		want     string // ResultOK, ResultFailed or ResultTimeout
		errHas   string
		detail   string
		maxDelay time.Duration // the check must end within this
	}{
		{name: "tcp connect", spec: "tcp://" + imap, want: ResultOK, detail: "connected"},
		{name: "tcp greeting", spec: "tcp://" + imap, opts: CheckOptions{Expect: "* OK"}, want: ResultOK, detail: "* OK [CAPABILITY IMAP4rev1] Dovecot ready."},
		{name: "tcp wrong greeting fails at once", spec: "tcp://" + bye, opts: CheckOptions{Expect: "* OK"}, want: ResultFailed, errHas: `"* BYE too many connections"`, maxDelay: 300 * time.Millisecond},
		{name: "tcp no greeting", spec: "tcp://" + silent, opts: CheckOptions{Expect: "* OK"}, want: ResultTimeout, errHas: "read greeting"},
		{name: "tcp refused", spec: "tcp://" + refused, want: ResultFailed, errHas: "connection refused"},
		{name: "http ok", spec: plain.URL + "/ok", want: ResultOK, detail: "HTTP 204"},
		{name: "http redirect is an answer", spec: plain.URL + "/moved", want: ResultOK, detail: "HTTP 302"},
		{name: "http 503", spec: plain.URL + "/down", want: ResultFailed, errHas: "503"},
		{name: "http 404", spec: plain.URL + "/gone", want: ResultFailed, errHas: "404"},
		{name: "http slow", spec: plain.URL + "/slow", want: ResultTimeout},
		{name: "https self-signed rejected", spec: tlsSrv.URL + "/ok", want: ResultFailed, errHas: "certificate"},
		{name: "https insecure", spec: tlsSrv.URL + "/ok", opts: CheckOptions{Insecure: true}, want: ResultOK, detail: "HTTP 204"},
		{name: "https insecure 503", spec: tlsSrv.URL + "/down", opts: CheckOptions{Insecure: true}, want: ResultFailed, errHas: "503"},
		{name: "exec true", spec: "exec:true", want: ResultOK, detail: "exit 0"},
		{name: "exec false", spec: "exec:echo broken >&2; exit 3", want: ResultFailed, errHas: "exit status 3: broken"},
		{name: "exec past timeout", spec: "exec:sleep 10", want: ResultTimeout, errHas: "timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Timeout = ample
			if tt.want == ResultTimeout {
				opts.Timeout = timeout
			}
			c, err := ParseCheck(tt.spec, opts)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			r := c.Run(context.Background())
			took := time.Since(start)
			if got := r.Status(); got != tt.want {
				t.Fatalf("status %s, want %s (err %v)", got, tt.want, r.Err)
			}
			if tt.errHas != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tt.errHas)) {
				t.Errorf("error %v, want it to contain %q", r.Err, tt.errHas)
			}
			if tt.detail != "" && r.Detail != tt.detail {
				t.Errorf("detail %q, want %q", r.Detail, tt.detail)
			}
			limit := tt.maxDelay
			if limit == 0 {
				limit = opts.Timeout + 1500*time.Millisecond // exec's WaitDelay at worst
			}
			if took > limit {
				t.Errorf("took %v, want at most %v", took, limit)
			}
			m := r.Manifest()
			if m.Kind != string(c.Kind) || m.Result != tt.want || m.LatencyMS <= 0 {
				t.Errorf("manifest check %+v", m)
			}
		})
	}
}

// TestExecTimeoutKillsGroup: a check command that started children is killed
// with all of them at the timeout, not just its shell.
func TestExecTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child")
	c, err := ParseCheck("exec:sleep 30 & echo $! > "+pidFile+"; wait", CheckOptions{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Run(context.Background())
	if r.Status() != ResultTimeout {
		t.Fatalf("status %s (%v), want timeout", r.Status(), r.Err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	// The child was reparented to init or a subreaper, which reaps it soon
	// after the kill; until then it is a zombie.
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	testutil.Eventually(t, 5*time.Second, "the timed-out check's child to be killed", func() (bool, string) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || strings.Contains(string(stat), ") Z "), string(stat)
	})
}

func TestParseCheck(t *testing.T) {
	opts := CheckOptions{Timeout: time.Second, Expect: "* OK"}
	good := []struct {
		spec, target string
		kind         Kind
		expect       string
	}{
		{"tcp://127.0.0.1:143", "127.0.0.1:143", KindTCP, "* OK"},
		{"tcp://[::1]:993/", "[::1]:993", KindTCP, "* OK"},
		{"http://localhost:8080/healthz", "http://localhost:8080/healthz", KindHTTP, ""},
		{"https://admin:secret@localhost/x", "https://admin:xxxxx@localhost/x", KindHTTPS, ""},
		{"exec:pg_isready -q", "pg_isready -q", KindExec, ""},
	}
	for _, g := range good {
		c, err := ParseCheck(g.spec, opts)
		if err != nil {
			t.Errorf("%s: %v", g.spec, err)
			continue
		}
		if c.Kind != g.kind || c.Target != g.target || c.Opts.Expect != g.expect {
			t.Errorf("%s: kind %s target %q expect %q, want %s %q %q", g.spec, c.Kind, c.Target, c.Opts.Expect, g.kind, g.target, g.expect)
		}
	}
	for _, bad := range []string{"", "tcp://host", "tcp://host:http", "tcp://:143", "tcp://h:70000", "exec:", "exec:  ", "ftp://x", "http://", "127.0.0.1:143"} {
		if _, err := ParseCheck(bad, opts); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := ParseCheck("exec:true", CheckOptions{}); err == nil {
		t.Error("zero timeout: no error")
	}
}
