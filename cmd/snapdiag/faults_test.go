//go:build linux

package main

// Faults during capture, each reproduced on the real system through the real
// binary: no privilege, an unreadable /proc file, a full disk, a process
// killed at any moment. Whatever happens, a file under a bundle's final name
// is a complete bundle, and the bundle says what is missing. (A collector
// that hangs past the deadline is covered in collectors: runner_test.go and
// faults_linux_test.go.)

import (
	"bytes"
	endian "encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/watch"
	"golang.org/x/sys/unix"
)

// nobody is the unprivileged user the tests run captures as.
const nobody = "65534"

// setpriv returns the path of util-linux's setpriv, or skips the test.
func setpriv(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	return p
}

// asNobody is the setpriv prefix that runs a command as an unprivileged user
// with no capabilities at all.
func asNobody(setpriv string) []string {
	return []string{setpriv, "--reuid=" + nobody, "--regid=" + nobody, "--clear-groups", "--inh-caps=-all"}
}

// runArgv runs argv (a wrapper such as setpriv, then the binary) in dir,
// bounded like snapdiag(): a hung capture fails the test, not hangs it.
func runArgv(t *testing.T, dir string, argv ...string) testutil.Result {
	t.Helper()
	return testutil.Run(t, runLimit, dir, nil, argv...)
}

// worldDir is a directory that every user may write, removed at the end.
// t.TempDir's parents are private to root.
func worldDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "snapdiag-faults-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

// publicBinary is a copy of the binary that an unprivileged user may run.
func publicBinary(t *testing.T) string {
	t.Helper()
	dir := worldDir(t)
	data, err := os.ReadFile(testutil.Snapdiag(t))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "snapdiag")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkBundle asserts that path is a complete bundle, by snapdiag's own
// reader and by tar, and returns its manifest and members.
func checkBundle(t *testing.T, path string) (*bundle.Manifest, *bundle.Bundle) {
	t.Helper()
	b := openBundle(t, path)
	t.Cleanup(func() { b.Close() })
	if b.Damage() != nil {
		t.Errorf("%s: damaged: %v", path, b.Damage())
	}
	var names []string
	for _, m := range b.Members() {
		names = append(names, m.Name)
	}
	if list := tarList(t, path); list != nil && !slices.Equal(list, names) {
		t.Errorf("tar --zstd -tf lists %d members, snapdiag %d:\ntar %q\nsnapdiag %q", len(list), len(names), list, names)
	}
	return b.Manifest(), b
}

// wantStatuses checks collectors' statuses; a want error text, when given,
// must be in the collector's error.
func wantStatuses(t *testing.T, m *bundle.Manifest, want map[string]bundle.Status, errs map[string][]string) {
	t.Helper()
	for name, st := range want {
		c := m.Collector(name)
		if c == nil {
			t.Errorf("manifest has no %s collector", name)
			continue
		}
		if c.Status != st {
			t.Errorf("%s: %s (%q), want %s", name, c.Status, c.Error, st)
		}
		for _, s := range errs[name] {
			if !strings.Contains(c.Error, s) {
				t.Errorf("%s: error %q does not say %q", name, c.Error, s)
			}
		}
	}
}

// onlyBundles asserts that dir holds nothing but complete bundles, the lock
// and, when allowTemp, the Writer's temporary files, and returns those.
func onlyBundles(t *testing.T, dir string, allowTemp bool) (bundles, temps []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.Name() == watch.LockName:
		case strings.HasPrefix(e.Name(), ".snapdiag-tmp-") && allowTemp:
			temps = append(temps, p)
		case strings.HasPrefix(e.Name(), "snapdiag-") && strings.HasSuffix(e.Name(), ".tar.zst"):
			checkBundle(t, p)
			bundles = append(bundles, p)
		default:
			t.Errorf("%s holds %s: want only complete bundles, the lock%s", dir, e.Name(),
				map[bool]string{true: " and temporary files", false: ""}[allowTemp])
		}
	}
	return bundles, temps
}

// testListener opens a listener owned by this (root) process.
func testListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// listenerIn returns the listener on port from the bundle's first sample.
func listenerIn(t *testing.T, b *bundle.Bundle, port int) bundle.Listener {
	t.Helper()
	data, err := b.ReadFile(bundle.SampleFile(0, bundle.SampleListeners))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := bundle.DecodeListeners(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Port == port && l.Addr == "127.0.0.1" {
			return l
		}
	}
	t.Fatalf("listener 127.0.0.1:%d not in %s", port, bundle.SampleListeners)
	return bundle.Listener{}
}

func hintLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "hint: ") {
			out = append(out, l)
		}
	}
	return out
}

// Not root: the bundle is written all the same, and says what needed
// privilege: the packet sample (CAP_NET_RAW), the kernel log when
// kernel.dmesg_restrict is set, and the owners of other users' listeners.
func TestFaultNotRoot(t *testing.T) {
	testutil.NeedRoot(t, "switching to an unprivileged user")
	sp := setpriv(t)
	dir, bin := worldDir(t), publicBinary(t)
	port := testListener(t)
	argv := append(asNobody(sp), bin, "capture", "--out", dir, "--samples", "2", "--interval", "100ms",
		"--sample", "200ms", "--port", strconv.Itoa(port))
	r := runArgv(t, dir, argv...)
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0: a bundle is written without root\n%s", r.Code, r.Stderr)
	}
	path := lastLine(r.Stdout)
	m, b := checkBundle(t, path)
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil || st.Uid != 65534 || st.Mode&0o777 != 0o600 {
		t.Errorf("bundle uid %d mode %o (%v), want nobody's, 0600", st.Uid, st.Mode&0o777, err)
	}
	if m.Host.EUID != 65534 || len(m.Host.Capabilities) != 0 {
		t.Errorf("manifest host euid %d caps %v, want 65534 and none", m.Host.EUID, m.Host.Capabilities)
	}

	// kmsg follows kernel.dmesg_restrict: devkmsg_open() ->
	// check_syslog_permissions() wants CAP_SYSLOG only when it is set.
	restrict, err := os.ReadFile("/proc/sys/kernel/dmesg_restrict")
	if err != nil {
		t.Fatal(err)
	}
	kmsg, kmsgErr := bundle.StatusOK, []string(nil)
	if strings.TrimSpace(string(restrict)) != "0" {
		kmsg, kmsgErr = bundle.StatusFailed, []string{"/dev/kmsg", "dmesg_restrict", "CAP_SYSLOG"}
	}
	wantStatuses(t, m, map[string]bundle.Status{
		"system": bundle.StatusOK, "sysctls": bundle.StatusOK, "proc-net": bundle.StatusOK,
		"sockets": bundle.StatusOK, "counters": bundle.StatusOK, "listeners": bundle.StatusOK,
		"packets": bundle.StatusFailed, "kmsg": kmsg,
	}, map[string][]string{"packets": {"CAP_NET_RAW"}, "kmsg": kmsgErr})
	if _, err := b.Stat(bundle.PathPackets); err == nil {
		t.Errorf("%s is in the bundle though the packet socket could not be opened", bundle.PathPackets)
	}

	// This root process's listener is seen, its owner is not, and the
	// manifest says why.
	if l := listenerIn(t, b, port); l.PID != 0 || l.Comm != "" {
		t.Errorf("listener %s owned by root: pid %d comm %q, want 0 and \"\" (unknown to nobody)", l.Local, l.PID, l.Comm)
	}
	if notes := strings.Join(m.Collector("listeners").Notes, "; "); !strings.Contains(notes, "owner not found") ||
		!strings.Contains(notes, "CAP_SYS_PTRACE") {
		t.Errorf("listeners notes %q do not say that owners could not be found, and why", notes)
	}

	hints := hintLines(r.Stderr)
	if len(hints) != 1 || !strings.Contains(hints[0], "run as root") {
		t.Errorf("stderr hints %q, want exactly one telling to run as root\n%s", hints, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "packets failed") {
		t.Errorf("stderr does not report the failed packet sample:\n%s", r.Stderr)
	}
}

// Root with a dropped capability set (systemd's CapabilityBoundingSet=, a
// container's defaults): only the packet sample is lost.
func TestFaultNoNetRaw(t *testing.T) {
	testutil.NeedRoot(t, "dropping a capability from root")
	sp := setpriv(t)
	dir := t.TempDir()
	port := testListener(t)
	r := runArgv(t, dir, sp, "--inh-caps=-net_raw", "--bounding-set=-net_raw",
		testutil.Snapdiag(t), "capture", "--out", dir, "--samples", "2", "--interval", "100ms", "--sample", "200ms")
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
	}
	m, b := checkBundle(t, lastLine(r.Stdout))
	if m.Host.EUID != 0 || slices.Contains(m.Host.Capabilities, "CAP_NET_RAW") ||
		!slices.Contains(m.Host.Capabilities, "CAP_NET_ADMIN") {
		t.Errorf("manifest host euid %d caps %v, want root without CAP_NET_RAW", m.Host.EUID, m.Host.Capabilities)
	}
	wantStatuses(t, m, map[string]bundle.Status{
		"system": bundle.StatusOK, "sysctls": bundle.StatusOK, "proc-net": bundle.StatusOK,
		"sockets": bundle.StatusOK, "counters": bundle.StatusOK, "listeners": bundle.StatusOK,
		"kmsg": bundle.StatusOK, "packets": bundle.StatusFailed,
	}, map[string][]string{"packets": {"CAP_NET_RAW"}})
	// Root still finds its own listener's owner: this test process.
	if l := listenerIn(t, b, port); l.PID != os.Getpid() || l.Comm == "" {
		t.Errorf("listener %s: pid %d comm %q, want this test's pid %d", l.Local, l.PID, l.Comm, os.Getpid())
	}
	if hints := hintLines(r.Stderr); len(hints) != 1 || !strings.Contains(hints[0], "CAP_NET_RAW") {
		t.Errorf("stderr hints %q, want exactly one naming CAP_NET_RAW\n%s", hints, r.Stderr)
	}
}

// copyProc copies the /proc files a capture reads, from this machine's
// /proc, into dst: the files of /proc/net and /proc/net/stat, every readable
// sysctl under net, and the system files. Files are 0644 and folders 0755,
// so an unprivileged capture can read the copy.
func copyProc(t *testing.T, dst string) {
	t.Helper()
	copyOne := func(rel string) {
		data, err := os.ReadFile(filepath.Join("/proc", rel))
		if err != nil {
			return // write-only sysctls, EIO until set: not in a real capture either
		}
		p := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range []string{"uptime", "loadavg", "meminfo", "stat", "sys/kernel/random/boot_id",
		"sys/fs/file-max", "sys/fs/file-nr", "sys/fs/nr_open"} {
		copyOne(rel)
	}
	for _, sub := range []string{"net", "net/stat"} {
		entries, err := os.ReadDir(filepath.Join("/proc", sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				copyOne(sub + "/" + e.Name())
			}
		}
	}
	err := filepath.WalkDir("/proc/sys/net", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			copyOne(strings.TrimPrefix(p, "/proc/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A /proc file that cannot be read costs its collector, named with the
// path, and nothing else. The proc root is a copy of this machine's /proc
// (--proc) in which one file is broken.
func TestFaultUnreadableProcFile(t *testing.T) {
	// An EIO on read, as the kernel gives it: stable_secret answers EIO
	// until set (addrconf_sysctl_stable_secret).
	const eioFile = "/proc/sys/net/ipv6/conf/all/stable_secret"
	_, eioErr := os.ReadFile(eioFile)

	allOK := map[string]bundle.Status{
		"system": bundle.StatusOK, "sysctls": bundle.StatusOK, "proc-net": bundle.StatusOK,
		"sockets": bundle.StatusOK, "counters": bundle.StatusOK, "listeners": bundle.StatusOK,
	}
	for _, tc := range []struct {
		name      string
		file      string // relative to the proc root
		break_    func(p string) error
		nobody    bool   // run the capture unprivileged (as nobody, when root)
		collector string // the collector that must fail
		want      string // in its error (or, for sysctls, its notes)
	}{
		{name: "intact copy"},
		{"fifo", "net/snmp", func(p string) error { os.Remove(p); return syscall.Mkfifo(p, 0o644) },
			false, "counters", "a named pipe, not a regular file"},
		{"directory", "meminfo", func(p string) error { os.Remove(p); return os.Mkdir(p, 0o755) },
			false, "system", "a directory, not a regular file"},
		{"io error", "net/protocols", func(p string) error {
			if !errors.Is(eioErr, syscall.EIO) {
				return fmt.Errorf("skip: %s does not answer EIO here (%v)", eioFile, eioErr)
			}
			os.Remove(p)
			return os.Symlink(eioFile, p)
		}, false, "proc-net", "input/output error"},
		{"mode 000", "net/netstat", func(p string) error { return os.Chmod(p, 0) },
			true, "counters", "permission denied"},
		{"sysctl fifo", "sys/net/core/somaxconn", func(p string) error { os.Remove(p); return syscall.Mkfifo(p, 0o644) },
			false, "sysctls", "net/core/somaxconn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := []string{testutil.Snapdiag(t)}
			if tc.nobody && os.Geteuid() == 0 {
				// Root reads a mode-000 file (CAP_DAC_OVERRIDE): drop it all.
				argv = append(asNobody(setpriv(t)), publicBinary(t))
			}
			proc, out := worldDir(t), worldDir(t)
			copyProc(t, proc)
			broken := filepath.Join(proc, tc.file)
			if tc.break_ != nil {
				if err := tc.break_(broken); err != nil {
					if strings.HasPrefix(err.Error(), "skip: ") {
						t.Skip(err)
					}
					t.Fatal(err)
				}
			}
			r := runArgv(t, out, append(argv, "capture", "--proc", proc, "--out", out,
				"--samples", "2", "--interval", "100ms", "--sample", "0", "--deadline", "20s")...)
			if r.Code != 0 {
				t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
			}
			m, _ := checkBundle(t, lastLine(r.Stdout))
			if m.DeadlineHit {
				t.Error("deadline_hit: a broken file held a collector until the deadline")
			}
			want := map[string]bundle.Status{}
			for k, v := range allOK {
				want[k] = v
			}
			errs := map[string][]string{}
			switch tc.collector {
			case "":
			case "sysctls":
				// A sysctl that cannot be read is a note, not a failure:
				// the values that matter were read.
				if notes := strings.Join(m.Collector("sysctls").Notes, "; "); !strings.Contains(notes, tc.want) {
					t.Errorf("sysctls notes %q do not name %s", notes, tc.want)
				}
			default:
				want[tc.collector] = bundle.StatusFailed
				errs[tc.collector] = []string{broken, tc.want}
				if !strings.Contains(r.Stderr, broken) {
					t.Errorf("stderr does not name %s:\n%s", broken, r.Stderr)
				}
			}
			wantStatuses(t, m, want, errs)
		})
	}
}

// manySockets opens n loopback connections (2n sockets), closed at the end,
// so the socket table is large.
func manySockets(t *testing.T, n int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns)/2, err)
		}
		conns = append(conns, c, <-accepted)
	}
}

// The disk fills up: a bundle that fits without its large members is written
// without them, and the manifest says so; when nothing fits, capture exits 1
// and leaves nothing but the lock.
func TestFaultDiskFull(t *testing.T) {
	testutil.NeedRoot(t, "mounting a tmpfs")
	// 4000 connections make the socket table most of the bundle, even
	// compressed: the rest is a few tens of KiB.
	manySockets(t, 4000)
	// The bundle's size decides where the disk must fill: measured first, in
	// an ordinary directory, so the test does not depend on this host's
	// other sockets. Half of it cannot hold the socket table; 1.2 times it
	// holds everything staged, but not the staged table and the finished
	// archive at once, so the disk fills during the commit.
	full := snapdiag(t, nil, "capture", "--out", t.TempDir(), "--samples", "2", "--interval", "100ms", "--sample", "0")
	if full.Code != 0 {
		t.Fatalf("capture into a roomy directory: exit %d\n%s", full.Code, full.Stderr)
	}
	fi, err := os.Stat(lastLine(full.Stdout))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"while staging", fi.Size() / 2},
		{"while committing", fi.Size() * 6 / 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := int(max(tc.size, 64<<10))
			dir := testutil.Tmpfs(t, size)
			r := snapdiag(t, nil, "capture", "--out", dir, "--samples", "2", "--interval", "100ms", "--sample", "0")
			if r.Code != 0 {
				t.Fatalf("exit %d, want 0: the small members fit\n%s", r.Code, r.Stderr)
			}
			m, b := checkBundle(t, lastLine(r.Stdout))
			wantStatuses(t, m, map[string]bundle.Status{
				"system": bundle.StatusOK, "sysctls": bundle.StatusOK, "proc-net": bundle.StatusOK,
				"counters": bundle.StatusOK, "listeners": bundle.StatusOK, "sockets": bundle.StatusFailed,
			}, map[string][]string{"sockets": {bundle.PathSocketsTCP, syscall.ENOSPC.Error()}})
			t.Logf("sockets: %s", m.Collector("sockets").Error)
			if _, err := b.Stat(bundle.PathSocketsTCP); err == nil {
				t.Errorf("%s is in the bundle: it did not fit", bundle.PathSocketsTCP)
			}
			if !strings.Contains(r.Stderr, "sockets failed") {
				t.Errorf("stderr does not report the lost socket table:\n%s", r.Stderr)
			}
			onlyBundles(t, dir, false)
			// The summary counts every socket. With thousands of client
			// ports it is a few hundred KiB itself: in 256 KiB it may not fit
			// either, and then the error must name it too.
			data, err := b.ReadFile(bundle.PathSocketsSummary)
			if errors.Is(err, fs.ErrNotExist) {
				if e := m.Collector("sockets").Error; !strings.Contains(e, bundle.PathSocketsSummary) {
					t.Errorf("%s left out, but the sockets error does not say so: %q", bundle.PathSocketsSummary, e)
				}
				return
			}
			total := 0
			if err == nil {
				var sum *bundle.SocketSummary
				if sum, err = bundle.DecodeSocketSummary(bytes.NewReader(data)); err == nil {
					total = sum.Total
				}
			}
			if err != nil || total < 8000 {
				t.Errorf("%s: total %d (%v), want the 8000 test sockets and more", bundle.PathSocketsSummary, total, err)
			}
		})
	}
	t.Run("nothing fits", func(t *testing.T) {
		dir := testutil.Tmpfs(t, 16<<10)
		r := snapdiag(t, nil, "capture", "--out", dir, "--samples", "1", "--sample", "0")
		if r.Code != 1 || r.Stdout != "" {
			t.Errorf("exit %d stdout %q, want exit 1 and no bundle path", r.Code, r.Stdout)
		}
		if !strings.Contains(r.Stderr, syscall.ENOSPC.Error()) || len(hintLines(r.Stderr)) != 1 ||
			!strings.Contains(hintLines(r.Stderr)[0], "full") {
			t.Errorf("stderr does not say the disk is full, with one hint:\n%s", r.Stderr)
		}
		if bundles, _ := onlyBundles(t, dir, false); len(bundles) > 0 {
			t.Errorf("bundles written: %v", bundles)
		}
	})
}

// inotifyCreate calls fn with the name of every entry created in dir until
// the returned stop is called.
func inotifyCreate(t *testing.T, dir string, fn func(name string)) (stop func()) {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	// Non-blocking, so the runtime poller serves reads and Close ends them.
	f := os.NewFile(uintptr(fd), "inotify")
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				// struct inotify_event: wd, mask, cookie, len, then name.
				l := int(endian.NativeEndian.Uint32(buf[off+12:]))
				end := min(off+unix.SizeofInotifyEvent+l, n)
				fn(string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:end], "\x00")))
				off = end
			}
		}
	}()
	return func() { f.Close(); <-done }
}

// The process killed at any moment: no file under a final bundle name unless
// it is complete; what the killed runs left is removed by a later run once
// it is older than CleanStale's threshold, and that run succeeds.
func TestFaultKilled(t *testing.T) {
	dir := t.TempDir()
	long := []string{"capture", "--out", dir, "--samples", "100", "--interval", "50ms", "--sample", "1s", "--deadline", "30s"}
	type point struct {
		name  string
		args  []string
		after time.Duration // kill this long after start, or
		on    string        // kill when an entry with this prefix is created
	}
	points := []point{
		{name: "10ms", args: long, after: 10 * time.Millisecond},
		{name: "100ms", args: long, after: 100 * time.Millisecond},
		{name: "500ms", args: long, after: 500 * time.Millisecond},
		{name: "staging created", args: long, on: ".snapdiag-tmp-stage-"},
	}
	if os.Geteuid() == 0 {
		// A large socket table makes the commit long enough to land in.
		manySockets(t, 2500)
	}
	points = append(points, point{name: "in commit", on: ".snapdiag-tmp-bundle-",
		args: []string{"capture", "--out", dir, "--samples", "1", "--sample", "0"}})

	for _, p := range points {
		cmd := exec.Command(testutil.Snapdiag(t), p.args...)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		killed := make(chan struct{}, 1)
		// The watcher can see the child's first file before cmd.Start has
		// returned and set cmd.Process: a kill waits for it.
		started := make(chan struct{})
		kill := func() {
			<-started
			select {
			case killed <- struct{}{}:
				cmd.Process.Signal(syscall.SIGKILL)
			default:
			}
		}
		var stop func()
		if p.on != "" {
			stop = inotifyCreate(t, dir, func(name string) {
				if strings.HasPrefix(name, p.on) {
					kill()
				}
			})
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		close(started)
		var timer *time.Timer
		if p.after > 0 {
			timer = time.AfterFunc(p.after, kill)
		}
		// Bound the run: a capture that is never killed ends on its own
		// (30s deadline); this only keeps a stuck one from hanging the test.
		guard := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
		err := cmd.Wait()
		guard.Stop()
		if timer != nil {
			timer.Stop()
		}
		if stop != nil {
			stop()
		}
		var ee *exec.ExitError
		wasKilled := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
		bundles, temps := onlyBundles(t, dir, true)
		t.Logf("killed %s: %v (killed: %v); dir now holds %d bundles, %d temporary entries", p.name, err, wasKilled, len(bundles), len(temps))
		if p.after >= 100*time.Millisecond && !wasKilled {
			t.Errorf("kill at %s: the 5s capture ended before the kill: %v", p.name, err)
		}
	}

	_, temps := onlyBundles(t, dir, true)
	if len(temps) == 0 {
		t.Fatal("no temporary files left by captures killed mid-sampling: the staging folder should remain")
	}
	// Age what the killed runs left past the one-minute threshold, and add a
	// fresh entry, as a capture still in progress would have.
	old := time.Now().Add(-2 * time.Minute)
	for _, p := range temps {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	fresh := filepath.Join(dir, ".snapdiag-tmp-bundle-fresh")
	if err := os.WriteFile(fresh, []byte("in progress"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := snapdiag(t, nil, "capture", "--out", dir, "--samples", "1", "--sample", "0")
	if r.Code != 0 {
		t.Fatalf("capture after the kills: exit %d\n%s", r.Code, r.Stderr)
	}
	checkBundle(t, lastLine(r.Stdout))
	_, left := onlyBundles(t, dir, true)
	if !slices.Equal(left, []string{fresh}) {
		t.Errorf("temporary entries after the next run: %q, want only the fresh one %s", left, fresh)
	}
}
