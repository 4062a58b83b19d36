package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"github.com/snapdiag/snapdiag/redact"
)

// promptly bounds a command that must refuse its input at once: a command
// blocked on a named pipe is killed after it and fails the test.
const promptly = 20 * time.Second

// fixtureBundle is a small recorded bundle with findings.
const fixtureBundle = "../../fixtures/synflood-cookies-off-v4/bundle.tar.zst"

// unpack writes the members of the bundle at path into a new directory, as
// tar --zstd -xf would.
func unpack(t *testing.T, path string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range testutil.ReadBundle(t, path) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

// A named pipe where a bundle, a bundle's member or a key file is expected
// is refused at once: open(2) of a pipe without a writer would block
// forever. analyze and redact exit 1 (a bundle could not be read); tui the
// same, before it takes the terminal.
func TestNamedPipeRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "bundle.tar.zst")
	mkfifo(t, fifo)
	key := filepath.Join(dir, "redact.key")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"analyze", []string{"analyze", fifo}},
		{"analyze json", []string{"analyze", "--format", "json", fifo}},
		{"redact", []string{"redact", "--key-file", key, fifo, filepath.Join(dir, "out.tar.zst")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testutil.Run(t, promptly, "", nil, append([]string{testutil.Snapdiag(t)}, tc.args...)...)
			if r.Code != exitError || r.Stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q: want exit %d and nothing on stdout", r.Code, r.Stdout, r.Stderr, exitError)
			}
		})
	}
	t.Run("tui", func(t *testing.T) {
		r := runOnPty(t, promptly, "tui", fifo)
		if r.Code != exitError || len(r.Stdout) != 0 {
			t.Errorf("tui on a named pipe: exit %d, terminal got %q, stderr %q: want exit %d and nothing drawn", r.Code, r.Stdout, r.Stderr, exitError)
		}
	})
	t.Run("key file", func(t *testing.T) {
		kfifo := filepath.Join(t.TempDir(), "fifo.key")
		mkfifo(t, kfifo)
		r := testutil.Run(t, promptly, "", nil, testutil.Snapdiag(t), "redact", "--key-file", kfifo, fixtureBundle, t.TempDir())
		if r.Code != exitError || r.Stdout != "" {
			t.Errorf("redact with a named pipe as key: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
		}
	})
	// An unpacked bundle with pipes in place of its members: the manifest
	// (read whole) and the socket table (streamed) are both refused, and
	// analyze reports on the rest as it does for any missing member.
	t.Run("unpacked members", func(t *testing.T) {
		want := testutil.Run(t, promptly, "", nil, testutil.Snapdiag(t), "analyze", "--format", "json", unpack(t, fixtureBundle))
		if want.Code != 4 {
			t.Fatalf("analyze of the unpacked fixture: exit %d: %s", want.Code, want.Stderr)
		}
		testutil.ValidateReport(t, []byte(want.Stdout))
		u := unpack(t, fixtureBundle)
		mkfifo(t, filepath.Join(u, filepath.FromSlash(bundle.PathSocketsTCP)))
		mkfifo(t, filepath.Join(u, filepath.FromSlash(bundle.PathKmsg)))
		r := testutil.Run(t, promptly, "", nil, testutil.Snapdiag(t), "analyze", "--format", "json", u)
		if r.Code != want.Code {
			t.Errorf("analyze with pipes for members: exit %d, want %d as without them; stderr %q", r.Code, want.Code, r.Stderr)
		}
		testutil.ValidateReport(t, []byte(r.Stdout))
		// Without its manifest the bundle still has its samples: analyze
		// reads them, as for an unpacked bundle whose manifest was lost.
		mkfifo(t, filepath.Join(u, bundle.PathManifest))
		if r := testutil.Run(t, promptly, "", nil, testutil.Snapdiag(t), "analyze", u); r.Code != want.Code {
			t.Errorf("analyze with a pipe for the manifest: exit %d, want %d; stderr %q", r.Code, want.Code, r.Stderr)
		}
	})
}

// hostWord reports whether text holds host as a word of its own (not inside
// a longer name: "vm" is not in "vmstat", nor in the kernel's
// "__vm_enough_memory"), without case. A word ends where a host name's
// characters end, as for the redactor: '-' and '_' belong to the word.
func hostWord(text, host string) bool {
	text, host = strings.ToLower(text), strings.ToLower(host)
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' }
	for i := 0; ; {
		j := strings.Index(text[i:], host)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(host)
		if (j == 0 || !alnum(text[j-1])) && (end == len(text) || !alnum(text[end])) {
			return true
		}
		i = j + 1
	}
}

// Redacting a damaged bundle leaks neither the host's name nor the source's
// path (whose file name holds the host's name): not in the manifest's error
// texts, not in any member. It warns on stderr and exits 0: a redacted copy
// was written.
func TestRedactDamagedBundle(t *testing.T) {
	dir := t.TempDir()
	r := snapdiag(t, nil, "capture", "--out", dir, "--sample", "1s", "--samples", "2", "--interval", "200ms")
	if r.Code != 0 {
		t.Fatalf("capture: exit %d: %s", r.Code, r.Stderr)
	}
	src := lastLine(r.Stdout)
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(src, fi.Size()*6/10); err != nil {
		t.Fatal(err)
	}
	lim := bundle.DefaultLimits()
	lim.Partial = true
	sb, err := bundle.Open(src, lim)
	if err != nil {
		t.Fatal(err)
	}
	host := sb.Manifest().Host.Hostname
	damaged := sb.Damage() != nil
	sb.Close()
	if !damaged || len(host) < 2 || !strings.Contains(filepath.Base(src), "-"+host+"-") {
		t.Fatalf("source %s (host %q, damaged %v): the test would prove nothing", src, host, damaged)
	}

	out := filepath.Join(t.TempDir(), "shared.tar.zst")
	r = snapdiag(t, nil, "redact", "--key-file", filepath.Join(t.TempDir(), "k"), src, out)
	if r.Code != 0 || lastLine(r.Stdout) != out {
		t.Fatalf("redact of a damaged bundle: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "damaged") {
		t.Errorf("redact did not warn that the source is damaged: %q", r.Stderr)
	}
	b := openBundle(t, out)
	defer b.Close()
	m := *b.Manifest()
	red := m.Collector("redact")
	if red == nil || red.Status != bundle.StatusFailed || red.Error == "" {
		t.Errorf("the copy's manifest does not record the damage: %+v", red)
	}
	// Member names are kept as they are (proc/sys/vm/... is not the host).
	m.Collectors = slices.Clone(m.Collectors)
	for i := range m.Collectors {
		m.Collectors[i].Files = nil
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	members := map[string][]byte{bundle.PathManifest: manifest}
	for _, mi := range b.Members() {
		if mi.Name == bundle.PathManifest {
			continue
		}
		if members[mi.Name], err = fs.ReadFile(b, mi.Name); err != nil {
			t.Fatal(err)
		}
	}
	abs, _ := filepath.Abs(src)
	for name, data := range members {
		if hostWord(string(data), host) {
			t.Errorf("%s of the redacted copy holds the host name %q", name, host)
		}
		if bytes.Contains(data, []byte(abs)) || bytes.Contains(data, []byte(filepath.Base(src))) {
			t.Errorf("%s of the redacted copy holds the source's path %s", name, abs)
		}
	}
}

// TestCaptureRedactKilled: capture --redact killed (SIGKILL) while its
// socket table is staged leaves no real address on disk. A listener in a
// lab's namespace holds 1,500 connections of its own; the kill lands once the
// staged table is on disk, before the commit (the counter samples keep the
// capture going for two more seconds), and every file left under --out,
// decompressed, is searched for the lab's addresses.
func TestCaptureRedactKilled(t *testing.T) {
	const conns = 1500
	l := lab.New(t, lab.Options{})
	err := l.Do(l.Server, func() error {
		// Sockets belong to the namespace they were made in, whatever
		// thread uses them later.
		_, port := testutil.Listen(t, netip.AddrPortFrom(l.ServerIP, 8082), 4096)
		for range conns {
			testutil.Dial(t, "tcp4", l.ServerIP, port)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "k")
	k, _, err := redact.LoadOrCreateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	real := []string{l.ServerIP.String() + ":"}
	server := redact.New(k).Addr(l.ServerIP.String())
	if server == l.ServerIP.String() {
		t.Fatalf("%s is its own pseudonym: the test would prove nothing", server)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := l.Start(ctx, l.Server, testutil.Snapdiag(t), "capture", "--out", dir, "--redact", "--key-file", key,
		"--samples", "3", "--interval", "1s", "--sample", "0", "-q")
	if err != nil {
		t.Fatal(err)
	}
	// The staged table complete (no longer .part), the commit not begun.
	staged := filepath.Join(dir, ".snapdiag-tmp-stage-*", "m", filepath.FromSlash(bundle.PathSocketsTCP))
	testutil.Eventually(t, 20*time.Second, "the socket table staged", func() (bool, string) {
		m, _ := filepath.Glob(staged)
		return len(m) > 0, fmt.Sprint(m)
	})
	// The capture's process group (ip netns exec, then snapdiag in its place).
	if err := syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Wait()

	seen := 0 // rows of the staged socket table, redacted
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
			// A staged member: one zstd frame, maybe cut by the kill.
			zr, err := zstd.NewReader(bytes.NewReader(data))
			if err != nil {
				return err
			}
			data, _ = io.ReadAll(zr)
			zr.Close()
		}
		for _, a := range real {
			if bytes.Contains(data, []byte(a)) {
				t.Errorf("%s holds the real address %s", path, a)
			}
		}
		if ok, _ := filepath.Match(staged, path); ok {
			seen += bytes.Count(data, []byte(server+":"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each connection is two rows, both ends on the server's address.
	if seen < 2*conns {
		t.Errorf("the staged socket table names the server's pseudonym %d times, want at least %d: the kill did not land while it was on disk", seen, 2*conns)
	}
}
