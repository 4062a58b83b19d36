package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/ship"
)

// Modes of faultProxy.
const (
	proxyPass   int32 = iota // forward to the store
	proxy503                 // answer 503 SlowDown, as a throttling store does
	proxyHang                // accept the request, never answer
	proxyStall               // forward, but stop reading request bodies after stallAfter bytes in all
	proxyVanish              // forward; when the store cannot be reached, never answer (a host gone without a reset)
)

// stallAfter is how many request body bytes proxyStall forwards: two
// parts of 5 MiB and some of a third.
const stallAfter = 12 << 20

// faultProxy sits in front of the real store and injects what a store
// does on a bad day.
type faultProxy struct {
	mode    atomic.Int32
	forward http.Handler
	// stalled is closed when a stalled body first reached its limit.
	stalled     chan struct{}
	stalledOnce sync.Once
	release     chan struct{}
	// left is what proxyStall still forwards.
	left atomic.Int64
}

func newFaultProxy(t *testing.T, endpoint string) (*faultProxy, string) {
	u, _ := url.Parse(endpoint)
	p := &faultProxy{stalled: make(chan struct{}), release: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if p.mode.Load() == proxyVanish {
			select {
			case <-r.Context().Done():
			case <-p.release:
			}
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	p.forward = rp
	p.left.Store(stallAfter)
	ts := httptest.NewServer(p)
	t.Cleanup(func() {
		close(p.release)
		ts.CloseClientConnections()
		ts.Close()
	})
	return p, ts.URL
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p.mode.Load() {
	case proxy503:
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
		return
	case proxyHang:
		select {
		case <-r.Context().Done():
		case <-p.release:
		}
		return
	case proxyStall:
		r.Body = &stallBody{r: r.Body, p: p, done: r.Context().Done()}
	}
	p.forward.ServeHTTP(w, r)
}

// stallBody passes its proxy's left bytes through, then blocks until the
// client goes.
type stallBody struct {
	r    io.ReadCloser
	p    *faultProxy
	done <-chan struct{}
}

func (b *stallBody) Read(buf []byte) (int, error) {
	left := b.p.left.Load()
	if left <= 0 {
		b.p.stalledOnce.Do(func() { close(b.p.stalled) })
		select {
		case <-b.done:
		case <-b.p.release:
		}
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(buf)) > left {
		buf = buf[:left]
	}
	n, err := b.r.Read(buf)
	b.p.left.Add(-int64(n))
	return n, err
}

func (b *stallBody) Close() error { return b.r.Close() }

// proxiedStore starts a store with a bucket "fleet" behind a faultProxy
// in mode, and returns the store, the proxy and the proxy's URL.
func proxiedStore(t *testing.T, mode int32) (*testutil.S3Server, *faultProxy, string) {
	srv := testutil.StartS3(t)
	srv.Bucket("fleet")
	proxy, purl := newFaultProxy(t, srv.Endpoint)
	proxy.mode.Store(mode)
	return srv, proxy, purl
}

// storeEnv is the environment for srv with its endpoint replaced.
func storeEnv(srv *testutil.S3Server, endpoint string) []string {
	env := srv.Env()
	if endpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL="+endpoint)
	}
	return env
}

// captureAs runs snapdiag capture in a new UTS namespace whose host name is
// host, so that bundles from several hosts come from one machine.
func captureAs(t *testing.T, host, out string, env []string, extra ...string) testutil.Result {
	t.Helper()
	// Through /proc, not hostname(1), which refuses the hostile names the
	// kernel takes.
	script := `printf %s "$1" >/proc/sys/kernel/hostname && shift && exec "$@"`
	argv := append([]string{"unshare", "--uts", "sh", "-c", script, "sh", host, testutil.Snapdiag(t), "capture",
		"--out", out, "--samples", "1", "--sample", "0", "--priority", "normal", "-q"}, extra...)
	return testutil.Run(t, 0, "", env, argv...)
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// noSecret fails the test when the store's secret shows in any of texts or
// in any file under dirs.
func noSecret(t *testing.T, texts []string, dirs ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, testutil.S3SecretKey) {
			t.Errorf("the secret is in the output:\n%s", s)
		}
	}
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			data, _ := os.ReadFile(p)
			if bytes.Contains(data, []byte(testutil.S3SecretKey)) {
				t.Errorf("the secret is in %s", p)
			}
			if strings.HasSuffix(p, ".tar.zst") {
				for name, m := range testutil.ReadBundle(t, p) {
					if bytes.Contains(m, []byte(testutil.S3SecretKey)) {
						t.Errorf("the secret is in %s of %s", name, p)
					}
				}
			}
			return nil
		})
	}
}

// TestCaptureUploadHosts: captures from several hosts (UTS namespaces),
// one with a hostile host name, land under PREFIX/HOST/NAME byte for byte;
// a second push of the same bundles sends nothing; the secret is nowhere.
func TestCaptureUploadHosts(t *testing.T) {
	testutil.NeedRoot(t, "capture in UTS namespaces with their own host names")
	srv := testutil.StartS3(t)
	srv.Bucket("fleet")
	out := t.TempDir()
	env := srv.Env()
	hosts := map[string]string{"web1": "web1", "db-2": "db-2", "..": "__"}
	var outputs []string
	var bundles []string
	for host, seg := range hosts {
		r := captureAs(t, host, out, env, "--upload", "s3://fleet/prod")
		outputs = append(outputs, r.Stdout, r.Stderr)
		if r.Code != 0 {
			t.Fatalf("capture as %s: exit %d\n%s", host, r.Code, r.Stderr)
		}
		b := lastLine(r.Stdout)
		bundles = append(bundles, b)
		obj := filepath.Join(srv.Root, "fleet", "prod", seg, filepath.Base(b))
		if got, want := fileSum(t, obj), fileSum(t, b); got != want {
			t.Errorf("%s: stored sha256 %s, bundle %s", host, got, want)
		}
		if ship.IsPending(b) {
			t.Errorf("%s: still pending after a good upload", host)
		}
	}
	r := snapdiag(t, env, append([]string{"push", "--to", "s3://fleet/prod"}, bundles...)...)
	outputs = append(outputs, r.Stdout, r.Stderr)
	if r.Code != 0 || strings.Count(r.Stdout, string(ship.Present)+" ") != len(bundles) {
		t.Errorf("second push: exit %d, want every bundle present:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	// Nothing outside the bucket's prefix: three host directories, no more.
	entries, _ := os.ReadDir(filepath.Join(srv.Root, "fleet", "prod"))
	if len(entries) != len(hosts) {
		t.Errorf("prefix holds %d entries, want %d", len(entries), len(hosts))
	}
	noSecret(t, outputs, out)
}

// TestPushRefusals: wrong credentials, a missing bucket, a throttling
// store and an unreachable one each exit 1 with one line on stderr, keep
// the bundle pending, and push --pending sends it once the cause is gone.
func TestPushRefusals(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("fleet")
	proxy, purl := newFaultProxy(t, srv.Endpoint)
	out := t.TempDir()
	bundle := lastLine(snapdiag(t, nil, "capture", "--out", out, "--samples", "1", "--sample", "0", "--priority", "normal", "-q").Stdout)
	cases := []struct {
		name string
		env  []string
		to   string
		mode int32
		want string // the error kind in the line
	}{
		{"wrong secret", []string{"AWS_SECRET_ACCESS_KEY=not-the-secret"}, "s3://fleet", proxyPass, ship.ErrCredentials.Error()},
		{"missing bucket", nil, "s3://nosuch", proxyPass, ship.ErrNoBucket.Error()},
		{"throttled", nil, "s3://fleet", proxy503, ship.ErrUnavailable.Error()},
		{"unreachable", []string{"AWS_ENDPOINT_URL=http://127.0.0.1:1"}, "s3://fleet", proxyPass, ship.ErrUnreachable.Error()},
		{"hanging", nil, "s3://fleet", proxyHang, ship.ErrUnavailable.Error()},
	}
	var outputs []string
	for _, c := range cases {
		proxy.mode.Store(c.mode)
		r := snapdiag(t, append(storeEnv(srv, purl), c.env...), "push", "--to", c.to, "--upload-timeout", "1s", bundle)
		outputs = append(outputs, r.Stdout, r.Stderr)
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if r.Code != 1 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s: exit %d, want 1 and one line saying %q:\n%s", c.name, r.Code, c.want, r.Stderr)
		}
		if c.name == "wrong secret" && !strings.Contains(r.Stderr, testutil.S3AccessKey) {
			t.Errorf("%s: the line does not name the key id:\n%s", c.name, r.Stderr)
		}
		if !ship.IsPending(bundle) {
			t.Errorf("%s: bundle not marked pending", c.name)
		}
	}
	pd, err := ship.ReadPending(bundle)
	if err != nil || pd.Attempts != len(cases) {
		t.Errorf("sidecar %+v, %v; want %d attempts", pd, err, len(cases))
	}
	proxy.mode.Store(proxyPass)
	r := snapdiag(t, storeEnv(srv, purl), "push", "--pending", out)
	outputs = append(outputs, r.Stdout, r.Stderr)
	if r.Code != 0 || ship.IsPending(bundle) {
		t.Fatalf("push --pending: exit %d, pending %v\n%s", r.Code, ship.IsPending(bundle), r.Stderr)
	}
	noSecret(t, append(outputs, "not-the-secret"), out)
}

// TestPushKilledMidUpload: a push SIGKILLed while a multipart upload is
// half sent leaves no object under the key; the next push --pending sends
// it whole.
func TestPushKilledMidUpload(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("fleet")
	proxy, purl := newFaultProxy(t, srv.Endpoint)
	out := t.TempDir()
	data := make([]byte, 24<<20)
	rand.Read(data)
	bundle := filepath.Join(out, "snapdiag-big-20260101T000000Z.tar.zst")
	if err := os.WriteFile(bundle, data, 0o600); err != nil {
		t.Fatal(err)
	}
	target, _ := ship.ParseTarget("s3://fleet/p")
	if err := ship.MarkPending(bundle, target, "p/big/"+filepath.Base(bundle), time.Now()); err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(srv.Root, "fleet", "p", "big", filepath.Base(bundle))

	proxy.mode.Store(proxyStall)
	cmd := exec.Command(testutil.Snapdiag(t), "push", "--pending", out, "--part-size", "5MiB")
	cmd.Env = append(os.Environ(), storeEnv(srv, purl)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proxy.stalled:
	case <-time.After(testutil.WaitLimit):
		cmd.Process.Kill()
		t.Fatal("the upload never reached the stall")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(obj); err == nil {
		t.Fatal("an object is under the final key after the kill")
	}
	if !ship.IsPending(bundle) {
		t.Fatal("the killed push left the bundle unmarked")
	}
	proxy.mode.Store(proxyPass)
	r := snapdiag(t, storeEnv(srv, purl), "push", "--pending", out, "--part-size", "5MiB")
	if r.Code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.Code, r.Stderr)
	}
	if got, want := fileSum(t, obj), fileSum(t, bundle); got != want {
		t.Errorf("stored sha256 %s, bundle %s", got, want)
	}
}

// TestWatchUploadStoreDown: with the store down or hanging when the watch
// captures, the restart runs all the same, the bundle stays pending, and it
// is sent after the store comes back.
func TestWatchUploadStoreDown(t *testing.T) {
	for _, down := range []string{"stopped", "hanging"} {
		t.Run(down, func(t *testing.T) {
			srv := testutil.StartS3(t)
			srv.Bucket("fleet")
			proxy, purl := newFaultProxy(t, srv.Endpoint)
			if down == "stopped" {
				srv.Stop()
			} else {
				proxy.mode.Store(proxyHang)
			}
			restarted := filepath.Join(t.TempDir(), "restarted")
			bundle, stderr := watchUploading(t, storeEnv(srv, purl), "--check", "tcp://127.0.0.1:1", "--timeout", "100ms",
				"--then", "touch "+restarted, "--upload-timeout", "2s")
			testutil.Eventually(t, 0, "the restart command to run", func() (bool, string) {
				_, err := os.Stat(restarted)
				return err == nil, "no " + restarted
			})
			// The restart ran while the store is still down: the bundle is
			// in --out, pending.
			if !ship.IsPending(bundle) {
				t.Fatal("bundle not pending while the store is down")
			}
			if down == "stopped" {
				srv.Start()
			} else {
				proxy.mode.Store(proxyPass)
			}
			awaitStored(t, srv, bundle, stderr)
		})
	}
}

// watchUploading starts snapdiag watch with args, capturing on the first
// failed check into a fresh --out with --upload s3://fleet/w and retries
// 200ms apart, and returns the path of its first bundle and its stderr.
// At the test's end the watch is stopped and its log and --out are
// searched for the store's secret.
func watchUploading(t *testing.T, env []string, args ...string) (string, *testutil.SyncBuffer) {
	t.Helper()
	out := t.TempDir()
	stderr := &testutil.SyncBuffer{} // written by exec while the test reads it
	cmd := exec.Command(testutil.Snapdiag(t), append([]string{"watch", "--failures", "1", "--every", "200ms",
		"--out", out, "--samples", "1", "--sample", "0", "--history", "0",
		"--upload", "s3://fleet/w", "--upload-retry", "200ms"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		noSecret(t, []string{stderr.String()}, out)
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no bundle path: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(line), stderr
}

// awaitStored waits for the watch whose log is stderr to send bundle to
// srv under fleet/w, its sidecar removed, and checks the object's bytes.
func awaitStored(t *testing.T, srv *testutil.S3Server, bundle string, stderr *testutil.SyncBuffer) {
	t.Helper()
	var obj string
	testutil.Eventually(t, 0, "the bundle to reach the store", func() (bool, string) {
		m, _ := filepath.Glob(filepath.Join(srv.Root, "fleet", "w", "*", filepath.Base(bundle)))
		if len(m) == 1 && !ship.IsPending(bundle) {
			obj = m[0]
			return true, ""
		}
		return false, stderr.String()
	})
	if got, want := fileSum(t, obj), fileSum(t, bundle); got != want {
		t.Errorf("stored sha256 %s, bundle %s", got, want)
	}
}

// TestCaptureUploadDoesNotHold: capture --upload, as an ExecStopPost= of a
// unit that restarts, with a store that accepts requests and never
// answers: capture returns by itself (without --upload-timeout, killed
// only by the test's hang guard) with its bundle written and left
// pending, one line saying why, and push --pending sends it once the store
// answers again.
func TestCaptureUploadDoesNotHold(t *testing.T) {
	srv, proxy, purl := proxiedStore(t, proxyHang)
	out := t.TempDir()
	r := snapdiag(t, storeEnv(srv, purl), "capture", "--out", out, "--samples", "1", "--sample", "0", "--priority", "normal", "-q",
		"--upload", "s3://fleet/p")
	if r.Code != 0 {
		t.Fatalf("capture: exit %d\n%s", r.Code, r.Stderr)
	}
	bundle := lastLine(r.Stdout)
	pd, err := ship.ReadPending(bundle)
	if err != nil || pd.Attempts != 1 {
		t.Fatalf("pending sidecar %+v, %v; want one attempt", pd, err)
	}
	if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], ship.ErrUnavailable.Error()) {
		t.Errorf("stderr, want one line saying %q:\n%s", ship.ErrUnavailable, r.Stderr)
	}
	proxy.mode.Store(proxyPass)
	if r := snapdiag(t, storeEnv(srv, purl), "push", "--pending", out); r.Code != 0 || ship.IsPending(bundle) {
		t.Fatalf("push --pending: exit %d\n%s", r.Code, r.Stderr)
	}
}

// TestCaptureUploadCredentialProcessHangs: a profile's credential_process
// that never answers (one waiting for an MFA code; minio-go runs it
// without a deadline) holds neither the capture nor the restart behind it:
// capture --upload exits 0 at its --upload-timeout, saying so in one line,
// with the bundle pending.
func TestCaptureUploadCredentialProcessHangs(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	script := filepath.Join(dir, "creds.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho $$ > "+pidFile+"\nexec sleep 120\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte("[default]\ncredential_process = "+script+" --mfa\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The script became the sleep (exec): end it by the pid it wrote.
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	env := []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_PROFILE=", "AWS_SHARED_CREDENTIALS_FILE=" + creds,
		"AWS_CONFIG_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_WEB_IDENTITY_TOKEN_FILE="}
	out := t.TempDir()
	// runLimit is the hang guard: a capture that waited for the process
	// would be killed there, long before the sleep ends.
	r := snapdiag(t, env, "capture", "--out", out, "--samples", "1", "--sample", "0", "--priority", "normal", "-q",
		"--upload", "s3://fleet/p", "--endpoint", "http://127.0.0.1:9", "--upload-timeout", "3s")
	if r.Code != 0 {
		t.Fatalf("capture: exit %d\n%s", r.Code, r.Stderr)
	}
	// The process was started before the upload gave up; on a loaded
	// machine its shell may write its pid a moment after snapdiag exits.
	testutil.Eventually(t, 10*time.Second, "the credential process to run (else the test proves nothing)", func() (bool, string) {
		_, err := os.Stat(pidFile)
		return err == nil, fmt.Sprint(err)
	})
	bundle := lastLine(r.Stdout)
	if !ship.IsPending(bundle) {
		t.Errorf("%s is not pending", bundle)
	}
	if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], ship.ErrUnavailable.Error()) {
		t.Errorf("stderr, want one line saying %q:\n%s", ship.ErrUnavailable, r.Stderr)
	}
}

// TestCaptureKilledWhileCollectingMarksNothing: a capture --upload
// SIGKILLed while it collects leaves no mark; the next capture, made
// without --upload, is never marked pending nor sent by push --pending.
func TestCaptureKilledWhileCollectingMarksNothing(t *testing.T) {
	out, store := t.TempDir(), t.TempDir()
	cmd := exec.Command(testutil.Snapdiag(t), "capture", "--out", out, "--samples", "30", "--interval", "1s", "--deadline", "60s",
		"--sample", "0", "--priority", "normal", "-q", "--upload", "file://"+store)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 0, "the capture to stage its members", func() (bool, string) {
		m, _ := filepath.Glob(filepath.Join(out, ".snapdiag-tmp-stage-*"))
		return len(m) > 0, "no staging folder"
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	bundle := lastLine(snapdiag(t, nil, "capture", "--out", out, "--samples", "1", "--sample", "0", "--priority", "normal", "-q").Stdout)
	if r := snapdiag(t, nil, "push", "--pending", out); r.Code != 0 {
		t.Fatalf("push --pending: exit %d\n%s", r.Code, r.Stderr)
	}
	if ship.IsPending(bundle) {
		t.Errorf("%s, captured without --upload, is marked pending", filepath.Base(bundle))
	}
	key, _ := ship.Key("", collectors.Hostname(), filepath.Base(bundle))
	if _, err := os.Stat(filepath.Join(store, key)); err == nil {
		t.Errorf("%s, captured without --upload, was sent", filepath.Base(bundle))
	}
}

// TestPushPendingRemovesSidecarWithoutBundle: the sidecar a capture killed
// inside its commit left, its bundle never written, is removed by push
// --pending, which exits 0 with nothing to send.
func TestPushPendingRemovesSidecarWithoutBundle(t *testing.T) {
	out, store := t.TempDir(), t.TempDir()
	target, err := ship.ParseTarget("file://" + store)
	if err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(out, "snapdiag-web1-20260101T000000Z.tar.zst")
	if err := ship.MarkPending(orphan, target, "web1/"+filepath.Base(orphan), time.Now()); err != nil {
		t.Fatal(err)
	}
	if r := snapdiag(t, nil, "push", "--pending", out); r.Code != 0 {
		t.Fatalf("push --pending: exit %d\n%s", r.Code, r.Stderr)
	}
	if _, err := os.Lstat(ship.PendingPath(orphan)); err == nil {
		t.Error("the sidecar of a bundle never committed is still there")
	}
}

// TestPushInstanceRole: snapdiag push on a host whose only credentials are
// its instance role (IMDSv2) sends the bundle; when the store refuses the
// role's secret, the one line on stderr names the key id, and the secret
// is nowhere in the output or the files written.
func TestPushInstanceRole(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("fleet")
	out := t.TempDir()
	bundle := lastLine(snapdiag(t, nil, "capture", "--out", out, "--samples", "1", "--sample", "0", "--priority", "normal", "-q").Stdout)
	const wrong = "role-secret-the-store-refuses"
	bad := testutil.StartIMDS(t, testutil.S3AccessKey, wrong, "")
	r := snapdiag(t, bad.Env(srv), "push", "--to", "s3://fleet/roles", bundle)
	outputs := []string{r.Stdout, r.Stderr}
	if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); r.Code != 1 || len(lines) != 1 ||
		!strings.Contains(lines[0], ship.ErrCredentials.Error()) || !strings.Contains(lines[0], testutil.S3AccessKey) {
		t.Errorf("refused role: exit %d, want 1 and one line naming the key id:\n%s", r.Code, r.Stderr)
	}
	if data, err := os.ReadFile(ship.PendingPath(bundle)); err != nil || bytes.Contains(data, []byte(wrong)) {
		t.Errorf("pending sidecar: %v, or the refused secret is in it", err)
	}
	good := testutil.StartIMDS(t, testutil.S3AccessKey, testutil.S3SecretKey, "")
	r = snapdiag(t, good.Env(srv), "push", "--pending", out)
	outputs = append(outputs, r.Stdout, r.Stderr)
	if r.Code != 0 || ship.IsPending(bundle) {
		t.Fatalf("push --pending with the role: exit %d\n%s", r.Code, r.Stderr)
	}
	noSecret(t, outputs, out)
	for _, s := range outputs {
		if strings.Contains(s, wrong) {
			t.Errorf("the refused secret is in the output:\n%s", s)
		}
	}
}

// TestWatchUploadStoreStopsDuringCapture: the store dies between the
// failed check and the capture's upload (the check itself kills it, so
// the moment is exact), and requests to it then go unanswered, as to a
// host gone without a reset. The watch's own log records the order: the
// bundle is written, the restart runs and finishes, and only then does the
// upload attempt fail, so the restart never waited for it; the bundle
// stays pending, and once the store is back the retry sends it.
func TestWatchUploadStoreStopsDuringCapture(t *testing.T) {
	srv, _, purl := proxiedStore(t, proxyVanish)
	dir := t.TempDir()
	// Fails every time; the first time, it kills the store (our own child,
	// by pid, once: a later run must not signal a recycled pid).
	check := filepath.Join(dir, "check.sh")
	script := fmt.Sprintf("#!/bin/sh\n[ -e %[1]s/killed ] || { kill -9 %[2]d; touch %[1]s/killed; }\nexit 1\n", dir, srv.PID())
	if err := os.WriteFile(check, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	restarted := filepath.Join(dir, "restarted")
	bundle, stderr := watchUploading(t, storeEnv(srv, purl), "--check", "exec:"+check, "--timeout", "5s",
		"--then", "touch "+restarted, "--upload-timeout", "3s", "--log-format", "json")

	// msgIndex is where each message first shows in the log.
	msgIndex := func() map[string]int {
		idx := map[string]int{}
		for i, l := range strings.Split(stderr.String(), "\n") {
			var rec struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal([]byte(l), &rec) == nil {
				if _, ok := idx[rec.Msg]; !ok {
					idx[rec.Msg] = i
				}
			}
		}
		return idx
	}
	const (
		written  = "bundle written"
		running  = "running restart command"
		finished = "restart command finished"
		failed   = "upload failed; bundle kept, pending"
	)
	var idx map[string]int
	testutil.Eventually(t, 0, "the upload attempt to fail", func() (bool, string) {
		idx = msgIndex()
		_, ok := idx[failed]
		return ok, stderr.String()
	})
	if _, err := os.Stat(filepath.Join(dir, "killed")); err != nil {
		t.Fatal("the check never stopped the store")
	}
	for _, m := range []string{written, running, finished} {
		if _, ok := idx[m]; !ok {
			t.Fatalf("no %q in the log:\n%s", m, stderr.String())
		}
	}
	if !(idx[written] < idx[running] && idx[running] < idx[finished] && idx[finished] < idx[failed]) {
		t.Errorf("log order: written %d, restart %d..%d, upload failed %d; want the restart done before the upload failed:\n%s",
			idx[written], idx[running], idx[finished], idx[failed], stderr.String())
	}
	if _, err := os.Stat(restarted); err != nil {
		t.Error("the restart command did not run")
	}
	if !ship.IsPending(bundle) {
		t.Fatal("bundle not pending while the store is down")
	}

	srv.Stop() // reaps the killed server
	srv.Start()
	awaitStored(t, srv, bundle, stderr)
	// The store holds the object a moment before the watch hears so and
	// logs it.
	testutil.Eventually(t, 0, "\"bundle uploaded\" in the log", func() (bool, string) {
		_, ok := msgIndex()["bundle uploaded"]
		return ok, stderr.String()
	})
}
