package testutil

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// S3 credentials of the test store: fixed, so a test can grep for the
// secret in everything snapdiag wrote and printed.
const (
	S3AccessKey = "SNAPDIAGTESTKEY"
	S3SecretKey = "snapdiag-test-secret-9f8e7d6c5b4a"
)

// S3Server is a real S3-compatible server (versitygw on a POSIX directory)
// listening on 127.0.0.1, started by a test and killed at its end.
type S3Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint string
	// Root is the directory behind it: each subdirectory is a bucket, each
	// object a file under it.
	Root string
	meta string
	addr string
	bin  string
	cmd  *exec.Cmd
	t    testing.TB
	// stderr collects the server's messages, shown when it does not start.
	stderr SyncBuffer
}

// versitygwBin finds versitygw: on PATH, else where go install puts it.
func versitygwBin() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	for _, dir := range []string{os.Getenv("GOBIN"), filepath.Join(goPath(), "bin")} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func goPath() string {
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.SplitList(p)[0]
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go")
}

// SyncBuffer is a bytes.Buffer safe for a process's output copier writing
// while a test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartS3 starts versitygw on a free loopback port with a fresh root and
// waits until it accepts connections. A test on a machine without versitygw
// is skipped, saying how to install it (.ci/run does).
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	bin := versitygwBin()
	if bin == "" {
		t.Skip("versitygw not installed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	// versitygw keeps object metadata in extended attributes; a sidecar
	// directory (outside the root) works on file systems without user
	// xattrs (tmpfs, overlay).
	s := &S3Server{Endpoint: "http://" + addr, Root: t.TempDir(), meta: t.TempDir(), addr: addr, bin: bin, t: t}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server again after Stop, on the same address and root.
func (s *S3Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin, "--access", S3AccessKey, "--secret", S3SecretKey,
		"--port", s.addr, "--quiet", "posix", "--sidecar", s.meta, s.Root)
	cmd.Stderr = &s.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start versitygw: %v", err)
	}
	s.cmd = cmd
	Eventually(s.t, 0, "versitygw to listen on "+s.addr, func() (bool, string) {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err != nil {
			return false, err.Error() + "\n" + s.stderr.String()
		}
		c.Close()
		return true, ""
	})
}

// Stop kills the server (the store goes away mid-whatever) and waits for it.
func (s *S3Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// PID is the running server's process id (0 when stopped), for a test
// whose own child process stops the store at a chosen moment.
func (s *S3Server) PID() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Bucket creates a bucket.
func (s *S3Server) Bucket(name string) {
	s.t.Helper()
	if err := os.Mkdir(filepath.Join(s.Root, name), 0o755); err != nil {
		s.t.Fatal(err)
	}
}

// Env is the environment an S3 client needs for this server: its endpoint
// and credentials, and nothing from the caller's own AWS configuration.
func (s *S3Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.Endpoint,
		"AWS_ACCESS_KEY_ID=" + S3AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + S3SecretKey,
		"AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

// Getenv reads Env, for code that takes its environment as a function.
func (s *S3Server) Getenv(extra ...string) func(string) string {
	m := map[string]string{}
	for _, kv := range append(s.Env(), extra...) {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				m[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	return func(k string) string { return m[k] }
}
