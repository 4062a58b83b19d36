package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// testTime is the capture time of the test bundles, fixed so that generated
// fixtures do not change from one run to the next.
var testTime = time.Date(2025, 11, 25, 13, 20, 0, 0, time.UTC)

// testMember is one member a test writes and expects back.
type testMember struct {
	owner string
	name  string
	data  []byte
}

// randomBytes returns n incompressible bytes, the same for the same seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testMembers is a small bundle's content, given out of order on purpose:
// the Writer must sort it.
func testMembers(pcapSize int) []testMember {
	return []testMember{
		{"packets", PathPackets, randomBytes(1, pcapSize)},
		{"sockets", PathSocketsTCP, []byte(`{"state":"LISTEN","local":"0.0.0.0:143"}` + "\n")},
		{"sockets", PathSocketsSummary, []byte(`{"total":1}`)},
		{"procnet", "proc/net/snmp6", []byte("Ip6InReceives 1\n")},
		{"sysctl", SysctlPath("net.core.somaxconn"), []byte("4096\n")},
		{"sysctl", SysctlPath("net.ipv4.tcp_syncookies"), []byte("1\n")},
		{"system", PathUname, []byte("Linux test 6.18.44 x86_64\n")},
		{"extra", "extra/notes.txt", []byte("rank 6\n")},
		{"samples", SampleFile(1, SampleNetstat), []byte("TcpExt: ListenDrops\nTcpExt: 7\n")},
		{"samples", SampleFile(0, SampleNetstat), []byte("TcpExt: ListenDrops\nTcpExt: 3\n")},
		{"samples", SampleFile(0, SampleTimeFile), []byte(`{"index":0}`)},
		{"system", "system/empty", nil},
	}
}

// testManifest is the manifest of the test bundles.
func testManifest() *Manifest {
	return &Manifest{
		Tool:    Tool{Name: "snapdiag", Version: "test"},
		Host:    Host{Hostname: "test", KernelRelease: "6.18.44"},
		Trigger: Trigger{Reason: "test"},
		Start:   testTime,
		End:     testTime,
		Collectors: []CollectorStatus{
			{Name: "sockets", Status: StatusOK, Files: []string{PathSocketsTCP, PathSocketsSummary}},
			{Name: "packets", Status: StatusAbsent, Error: "no CAP_NET_RAW"},
		},
	}
}

// writeBundle writes members into a bundle in dir, the even ones with
// WriteFile and the odd ones streamed through Create, and returns its path.
func writeBundle(t testing.TB, dir string, members []testMember) string {
	t.Helper()
	w, err := NewWriter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range members {
		if i%2 == 0 {
			if err := w.For(m.owner).WriteFile(m.name, m.data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		f, err := w.For(m.owner).Create(m.name)
		if err != nil {
			t.Fatal(err)
		}
		for chunk := range slices.Chunk(m.data, 1000) {
			if _, err := f.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	p, err := w.Commit(FileName("test", testTime), testManifest())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// commitAndOpen commits w as b.tar.zst in its directory and opens the
// bundle, closed when the test ends.
func commitAndOpen(t *testing.T, w *Writer) *Bundle {
	t.Helper()
	p, err := w.Commit("b.tar.zst", testManifest())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// wantOrder is the member order a bundle of testMembers must have.
var wantOrder = []string{
	PathManifest,
	"samples/000/proc/net/netstat",
	"samples/000/time",
	"samples/001/proc/net/netstat",
	"system/empty",
	PathUname,
	"proc/sys/net/core/somaxconn",
	"proc/sys/net/ipv4/tcp_syncookies",
	"proc/net/snmp6",
	PathSocketsSummary,
	"extra/notes.txt",
	PathSocketsTCP,
	PathPackets,
}

func TestWriterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	members := testMembers(300 << 10)
	p := writeBundle(t, dir, members)

	if got, want := filepath.Base(p), "snapdiag-test-20251125T132000Z.tar.zst"; got != want {
		t.Errorf("bundle name %s, want %s", got, want)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode %v, want 0600", fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*")); len(left) > 0 {
		t.Errorf("Commit left temporary files: %v", left)
	}

	// A small cache so that the large members are streamed again.
	b, err := Open(p, Limits{CacheMember: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Damage() != nil {
		t.Errorf("Damage() = %v, want nil", b.Damage())
	}
	if b.Path() != p {
		t.Errorf("Path() = %q, want %q", b.Path(), p)
	}

	var order []string
	for i, m := range b.Members() {
		order = append(order, m.Name)
		if m.Index != i {
			t.Errorf("%s: Index %d, want %d", m.Name, m.Index, i)
		}
		if m.Mode != 0o600 {
			t.Errorf("%s: mode %v, want 0600", m.Name, m.Mode)
		}
		if !m.ModTime.Equal(testTime) {
			t.Errorf("%s: mtime %v, want %v", m.Name, m.ModTime, testTime)
		}
	}
	if diff := cmp.Diff(wantOrder, order); diff != "" {
		t.Errorf("member order (-want +got):\n%s", diff)
	}
	for _, m := range members {
		got, err := b.ReadFile(m.name)
		if err != nil {
			t.Errorf("ReadFile: %v", err)
			continue
		}
		if !bytes.Equal(got, m.data) {
			t.Errorf("%s: read %d bytes back, want the %d written", m.name, len(got), len(m.data))
		}
		// And through Open, which streams the members not held.
		f, err := b.Open(m.name)
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, m.data) {
			t.Errorf("%s: Open+ReadAll: %d bytes, %v; want the %d written", m.name, len(got), err, len(m.data))
		}
	}

	want := testManifest()
	want.Format = Format
	if diff := cmp.Diff(want, b.Manifest()); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	raw, err := b.ReadFile(PathManifest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseManifest(raw); err != nil {
		t.Errorf("manifest.json: %v", err)
	}

	t.Run("tar", func(t *testing.T) {
		if _, err := exec.LookPath("zstd"); err != nil {
			t.Skip("no zstd program (apt-get install zstd) for tar --zstd")
		}
		out, err := exec.Command("tar", "--zstd", "-tf", p).CombinedOutput()
		if err != nil {
			t.Fatalf("tar --zstd -tf: %v\n%s", err, out)
		}
		if diff := cmp.Diff(wantOrder, strings.Fields(string(out))); diff != "" {
			t.Errorf("tar --zstd -tf (-want +got):\n%s", diff)
		}
		// And the content, as a person with tar would read it.
		got, err := exec.Command("tar", "--zstd", "-xOf", p, PathUname).Output()
		if err != nil || string(got) != "Linux test 6.18.44 x86_64\n" {
			t.Errorf("tar --zstd -xOf %s: %q, %v", PathUname, got, err)
		}
	})
}

func TestWriterFiles(t *testing.T) {
	w, err := NewWriter(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, m := range testMembers(10) {
		if err := w.For(m.owner).WriteFile(m.name, m.data); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{PathSocketsSummary, PathSocketsTCP}
	if diff := cmp.Diff(want, w.Files("sockets")); diff != "" {
		t.Errorf("Files(sockets) (-want +got):\n%s", diff)
	}
}

func TestWriterLeavesOutOpenMember(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.For("system").WriteFile(PathUname, []byte("Linux\n")); err != nil {
		t.Fatal(err)
	}
	// A collector cut by the deadline: its member is never closed.
	f, err := w.For("sockets").Create(PathSocketsTCP)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(`{"state":"ESTAB"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	b := commitAndOpen(t, w)
	if _, err := f.Write([]byte("more")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Commit: %v, want ErrClosed", err)
	}
	if err := f.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("Close after Commit: %v, want ErrClosed", err)
	}

	var names []string
	for _, m := range b.Members() {
		names = append(names, m.Name)
	}
	if diff := cmp.Diff([]string{PathManifest, PathUname}, names); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

func TestWriterClosed(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit("b.tar.zst", testManifest()); err != nil {
		t.Fatal(err)
	}
	if err := w.For("system").WriteFile(PathUname, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteFile after Commit: %v, want ErrClosed", err)
	}
	if _, err := w.For("system").Create(PathUname); !errors.Is(err, ErrClosed) {
		t.Errorf("Create after Commit: %v, want ErrClosed", err)
	}
	if _, err := w.Commit("c.tar.zst", testManifest()); !errors.Is(err, ErrClosed) {
		t.Errorf("second Commit: %v, want ErrClosed", err)
	}

	w, err = NewWriter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if err := w.WriteFile(PathUname, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteFile after Abort: %v, want ErrClosed", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*")); len(left) > 0 {
		t.Errorf("Abort left temporary files: %v", left)
	}
}

func TestWriterTooLarge(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.For("system").WriteFile(PathUname, make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	err = w.For("sockets").WriteFile(PathSocketsTCP, make([]byte, 41))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("WriteFile over the limit: %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), PathSocketsTCP) {
		t.Errorf("error %q does not name the member", err)
	}
	// The member that did not fit is left out, the bundle is still written.
	b := commitAndOpen(t, w)
	if _, err := b.Stat(PathSocketsTCP); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(%s) = %v, want ErrNotExist", PathSocketsTCP, err)
	}
	if _, err := b.Stat(PathUname); err != nil {
		t.Errorf("Stat(%s): %v", PathUname, err)
	}
}

// TestMemWriterTooLarge: a memory Writer (the watchdog's history) refuses
// a large member over its limit with ErrTooLarge, without panicking, and
// the name can be written again once it fits.
func TestMemWriterTooLarge(t *testing.T) {
	w := NewMemWriter(300 << 10)
	name := SampleFile(0, SampleListeners)
	err := w.For("listeners").WriteFile(name, make([]byte, 400<<10))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("WriteFile over the limit: %v, want ErrTooLarge", err)
	}
	if err := w.For("listeners").WriteFile(name, []byte("[]\n")); err != nil {
		t.Fatalf("WriteFile after the refused one: %v", err)
	}
	if got := string(w.Take()[name]); got != "[]\n" {
		t.Errorf("member = %q", got)
	}
}

func TestWriterRejectsNames(t *testing.T) {
	w, err := NewWriter(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	// manifest.json is written by Commit alone, whoever asks: a second one
	// would make the bundle unreadable (a duplicate member).
	for _, name := range []string{"", "/etc/passwd", "../x", "a//b", "./a", "a/", PathManifest} {
		if err := w.WriteFile(name, nil); err == nil {
			t.Errorf("WriteFile(%q) succeeded", name)
		}
		if err := w.For("c").WriteFile(name, nil); err == nil {
			t.Errorf("For(c).WriteFile(%q) succeeded", name)
		}
	}
	if err := w.WriteFile(PathUname, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.For("other").WriteFile(PathUname, nil); err == nil {
		t.Errorf("second WriteFile(%s) succeeded", PathUname)
	}
}

func TestWriterConcurrent(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				name := SampleFile(i, fmt.Sprintf("f%02d", j))
				if err := w.For(fmt.Sprint(i)).WriteFile(name, []byte(name)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	b := commitAndOpen(t, w)
	if n := len(b.Members()); n != 1+8*20 {
		t.Errorf("%d members, want %d", n, 1+8*20)
	}
	for _, m := range b.Members()[1:] {
		if data, err := b.ReadFile(m.Name); err != nil || string(data) != m.Name {
			t.Errorf("%s: %q, %v", m.Name, data, err)
		}
	}
}

func TestWriterLinkUnique(t *testing.T) {
	dir := t.TempDir()
	name := FileName("test", testTime)
	var paths []string
	for i := range 3 {
		w, err := NewWriter(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.For("system").WriteFile(PathUname, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		p, err := w.Commit(name, testManifest())
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Base(p))
	}
	base := strings.TrimSuffix(name, ".tar.zst")
	want := []string{name, base + "-2.tar.zst", base + "-3.tar.zst"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("bundle names (-want +got):\n%s", diff)
	}
	// Each keeps its own content: none was overwritten.
	for i, p := range paths {
		b, err := Open(filepath.Join(dir, p), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if data, err := b.ReadFile(PathUname); err != nil || string(data) != fmt.Sprint(i) {
			t.Errorf("%s: %s = %q, %v; want %q", p, PathUname, data, err, fmt.Sprint(i))
		}
		b.Close()
	}
}

func TestCleanStale(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, isDir bool) {
		p := filepath.Join(dir, name)
		if isDir {
			if err := os.MkdirAll(filepath.Join(p, "m"), 0o700); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk(tempPrefix+"stage-123", true)
	mk(tempPrefix+"bundle-456", false)
	mk("snapdiag-host-20251125T132000Z.tar.zst", false)
	mk("notes.txt", false)
	mk("snapdiag-tmp-lookalike", false)
	mk("other-dir", true)
	// A symlink with the prefix is not followed nor removed.
	target := t.TempDir()
	if err := os.Symlink(target, filepath.Join(dir, tempPrefix+"link")); err != nil {
		t.Fatal(err)
	}

	// Too young: nothing goes.
	if n, err := CleanStale(dir, time.Hour); err != nil || n != 0 {
		t.Errorf("CleanStale(1h) = %d, %v; want 0", n, err)
	}
	n, err := CleanStale(dir, 0)
	if err != nil || n != 2 {
		t.Errorf("CleanStale(0) = %d, %v; want 2", n, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{tempPrefix + "link", "notes.txt", "other-dir", "snapdiag-host-20251125T132000Z.tar.zst", "snapdiag-tmp-lookalike"}
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("left in dir (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("symlink target: %v", err)
	}
}

// writerKind is one kind of Writer with the way it is sealed and its
// members read back, so that one contract test runs over both.
type writerKind struct {
	name string
	new  func(t *testing.T) *Writer
	// seal ends the Writer (Commit for a disk Writer, Take for a memory one)
	// and returns its members.
	seal func(t *testing.T, w *Writer) map[string][]byte
}

var writerKinds = []writerKind{
	{
		name: "disk",
		new: func(t *testing.T) *Writer {
			w, err := NewWriter(t.TempDir(), 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.Abort)
			return w
		},
		seal: func(t *testing.T, w *Writer) map[string][]byte {
			b := commitAndOpen(t, w)
			got := map[string][]byte{}
			for _, m := range b.Members() {
				if m.Name == PathManifest {
					continue
				}
				data, err := b.ReadFile(m.Name)
				if err != nil {
					t.Fatal(err)
				}
				got[m.Name] = data
			}
			return got
		},
	},
	{
		name: "memory",
		new:  func(*testing.T) *Writer { return NewMemWriter(0) },
		seal: func(_ *testing.T, w *Writer) map[string][]byte { return w.Take() },
	},
}

// TestWriterContract holds both Writers to the same rules: a streamed member
// refuses writes after its Close and keeps what it had; a sealed Writer
// refuses new members, and a stream still open when it was sealed is left
// out with ErrClosed.
func TestWriterContract(t *testing.T) {
	for _, k := range writerKinds {
		t.Run(k.name, func(t *testing.T) {
			w := k.new(t)
			f, err := w.For("sockets").Create(PathSocketsTCP)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("row\n")); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("late\n")); !errors.Is(err, ErrClosed) {
				t.Errorf("Write after the member's Close: %v, want ErrClosed", err)
			}
			if err := w.For("system").WriteFile(PathUname, []byte("Linux\n")); err != nil {
				t.Fatal(err)
			}
			open, err := w.For("packets").Create(PathPackets)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := open.Write([]byte("pcap")); err != nil {
				t.Fatal(err)
			}

			got := k.seal(t, w)
			want := map[string][]byte{PathSocketsTCP: []byte("row\n"), PathUname: []byte("Linux\n")}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}

			if _, err := open.Write([]byte("late")); !errors.Is(err, ErrClosed) {
				t.Errorf("Write to an open member after the seal: %v, want ErrClosed", err)
			}
			if err := open.Close(); !errors.Is(err, ErrClosed) {
				t.Errorf("Close of an open member after the seal: %v, want ErrClosed", err)
			}
			if err := w.WriteFile(SampleFile(0, SampleNetstat), []byte("x")); !errors.Is(err, ErrClosed) {
				t.Errorf("WriteFile after the seal: %v, want ErrClosed", err)
			}
			if _, err := w.Create(SampleFile(0, SampleSNMP)); !errors.Is(err, ErrClosed) {
				t.Errorf("Create after the seal: %v, want ErrClosed", err)
			}
		})
	}
}

// A small member's stream that outgrows the memory bound moves to a staging
// file mid-way and still reaches the bundle whole.
func TestStreamedMemberSpillsToDisk(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(4, memMemberMax+3000)
	p := writeBundle(t, dir, []testMember{
		{"system", PathUname, []byte("Linux\n")},
		{"extra", "extra/big", data},
	})
	got := testutil.ReadMember(t, p, "extra/big")
	if !bytes.Equal(got, data) {
		t.Errorf("extra/big: %d bytes back, want the %d written", len(got), len(data))
	}
}

// TestWriterBeforeCommit: the function set with SetBeforeCommit is called
// with the bundle's final path and manifest while nothing is there yet,
// never with a name another file holds, and the bundle then appears under
// that path.
func TestWriterBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	taken := filepath.Join(dir, "b.tar.zst")
	if err := os.WriteFile(taken, []byte("another bundle"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		path    string
		existed bool
		host    string
	}
	var calls []call
	w.SetBeforeCommit(func(path string, m *Manifest) {
		_, err := os.Lstat(path)
		calls = append(calls, call{path, err == nil, m.Host.Hostname})
	})
	m := testManifest()
	p, err := w.Commit("b.tar.zst", m)
	if err != nil {
		t.Fatal(err)
	}
	want := []call{{filepath.Join(dir, "b-2.tar.zst"), false, m.Host.Hostname}}
	if !slices.Equal(calls, want) || p != want[0].path {
		t.Errorf("before-commit calls %+v and bundle %s, want %+v and the bundle there", calls, p, want)
	}
}

// TestAvailableBuffer writes a staged member through AvailableBuffer and
// plain Writes, interleaved, across many staging buffers: bytes appended to
// the buffer are taken where they are, bytes that outgrow it or come from
// elsewhere are copied, and the member holds every byte in order either
// way.
func TestAvailableBuffer(t *testing.T) {
	w, err := NewWriter(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := w.Create(PathSocketsTCP)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := f.(*memberFile)
	if !ok {
		t.Fatalf("Create(%s) = %T, want a staged member", PathSocketsTCP, f)
	}
	r := rand.New(rand.NewPCG(3, 4))
	var want []byte
	for i := 0; len(want) < 8*stageChunk; i++ {
		row := fmt.Appendf(nil, "row %d %s\n", i, strings.Repeat("x", r.IntN(3000)))
		// The first staging buffers are filled in place only, then the
		// three ways take turns.
		switch k := i % 5; {
		case len(want) < 3*stageChunk || k < 3: // appended in place
			room := 4 << 10
			b := m.AvailableBuffer(room)
			if cap(b) < room {
				t.Fatalf("AvailableBuffer(%d) gave %d bytes of room", room, cap(b))
			}
			b = append(b, row...)
			if _, err := f.Write(b); err != nil {
				t.Fatal(err)
			}
		case k == 3: // outgrows the room asked for: copied
			b := append(m.AvailableBuffer(16), row...)
			b = append(b, bytes.Repeat([]byte{'y'}, stageChunk)...)
			b = append(b, '\n')
			row = b
			if _, err := f.Write(b); err != nil {
				t.Fatal(err)
			}
		default: // a buffer of the caller's own
			if _, err := f.Write(bytes.Clone(row)); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, row...)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	path, err := w.Commit("t.tar.zst", &Manifest{})
	if err != nil {
		t.Fatal(err)
	}
	got := testutil.ReadMember(t, path, PathSocketsTCP)
	if !bytes.Equal(got, want) {
		t.Fatalf("member holds %d bytes, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
	if b := m.AvailableBuffer(1); b != nil {
		t.Errorf("AvailableBuffer after Close = %d bytes of room, want none", cap(b))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestDiscard: a staged member discarded mid-way has stopped its
// compressor and removed its staging file when Discard returns, is not in
// the bundle, and its name can be written again; the same for a member
// held in memory.
func TestDiscard(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{PathSocketsTCP, "proc/net/snmp"} {
		f, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := f.Write(bytes.Repeat([]byte("cut "), 16<<10)); err != nil {
				t.Fatal(err)
			}
		}
		Discard(f)
		if m, ok := f.(*memberFile); ok {
			// finish has had the compressor's last word: it has stopped.
			if !m.done || m.cur != nil || len(m.free) > 0 {
				t.Errorf("%s: compressor not stopped after Discard", name)
			}
		}
		if parts, _ := filepath.Glob(filepath.Join(dir, "*", "m", "*", "*.part")); len(parts) > 0 {
			t.Errorf("%s: staging files left: %v", name, parts)
		}
		// The name is free again.
		if f, err = w.Create(name); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("whole\n")); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	path, err := w.Commit("t.tar.zst", &Manifest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{PathSocketsTCP, "proc/net/snmp"} {
		if got := testutil.ReadMember(t, path, name); string(got) != "whole\n" {
			t.Errorf("%s in the bundle: %q, want the second one", name, got)
		}
	}
}
