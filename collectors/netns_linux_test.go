package collectors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"golang.org/x/sys/unix"
)

// TestCaptureOtherNamespace: a capture given a namespace thread reads that
// namespace's listeners, counters and net.* sysctls, not the capturing
// process's, takes the global net.* keys from the host and says so, and opens
// its netlink and packet sockets inside the namespace.
func TestCaptureOtherNamespace(t *testing.T) {
	testutil.NeedRoot(t, "entering a network namespace needs CAP_SYS_ADMIN")
	l := lab.New(t, lab.Options{})
	// A listener in the lab's server namespace, one in this process's:
	// the capture must list the first and not the second.
	var nsPort int
	if err := l.Do(l.Server, func() error {
		_, nsPort = testutil.Listen(t, netip.AddrPortFrom(l.ServerIP, 0), 7)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, ownPort := testutil.Listen(t, netip.MustParseAddrPort("127.0.0.1:0"), 9)
	if err := l.Sysctl(l.Server, "net.core.somaxconn", "77"); err != nil {
		t.Fatal(err)
	}

	th, err := netns.Enter(filepath.Join(netns.RunDir, l.Server))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	h := Host{NS: th}.WithDefaults()

	res, err := Capture(context.Background(), Options{
		Dir: t.TempDir(), Samples: 1, Interval: time.Millisecond, Deadline: 10 * time.Second,
		Host: Host{NS: th, PacketWindow: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range res.Manifest.Collectors {
		if st.Status != bundle.StatusOK {
			t.Errorf("collector %s: %s %s", st.Name, st.Status, st.Error)
		}
	}
	members := testutil.ReadBundle(t, res.Path)
	ls, err := bundle.DecodeListeners(bytes.NewReader(members[bundle.SampleFile(0, bundle.SampleListeners)]))
	if err != nil {
		t.Fatal(err)
	}
	var ports []int
	for _, x := range ls {
		ports = append(ports, x.Port)
	}
	if !slices.Contains(ports, nsPort) || slices.Contains(ports, ownPort) {
		t.Errorf("listener ports %v: want the namespace's %d and not this process's %d", ports, nsPort, ownPort)
	}
	if got := strings.TrimSpace(string(members[bundle.DirSysctl+"/net/core/somaxconn"])); got != "77" {
		t.Errorf("net.core.somaxconn = %q, want the namespace's 77", got)
	}
	// Its interfaces are the namespace's, as /proc/net/dev inside it lists them.
	inside, err := l.ReadNet(l.Server, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := testutil.DevNames(members[bundle.SampleFile(0, bundle.SampleDev)]), testutil.DevNames(inside); !slices.Equal(got, want) {
		t.Errorf("sampled /proc/net/dev lists %v, the namespace has %v", got, want)
	}
	si := res.Manifest.Sysctls
	if si == nil || !slices.Contains(si.FromHostKeys, "net/core/netdev_max_backlog") || si.FromHost != len(si.FromHostKeys) {
		t.Errorf("manifest sysctls %+v: want net/core/netdev_max_backlog among the keys read from the host", si)
	}
	if _, ok := members[bundle.DirSysctl+"/net/core/netdev_max_backlog"]; !ok {
		t.Errorf("the global net.core.netdev_max_backlog is not in the bundle")
	}
	for _, k := range si.FromHostKeys {
		if strings.HasPrefix(k, "net/ipv4/conf/") {
			t.Errorf("%s read from the host: an interface the namespace does not have", k)
		}
	}

	// The sockets the collectors open are the namespace's (SIOCGSKNS opens
	// the namespace a socket belongs to).
	nsOf := func(fd int) uint64 {
		t.Helper()
		nsfd, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
		if err != nil {
			t.Fatalf("SIOCGSKNS: %v", err)
		}
		defer unix.Close(nsfd)
		var st unix.Stat_t
		if err := unix.Fstat(nsfd, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	f, err := newPacketFilter(nil, nil, 96)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := openPacketSocket(h, f)
	if err != nil {
		t.Fatal(err)
	}
	defer ring.close()
	diag, err := h.dumper().Open(unix.AF_NETLINK, unix.SOCK_DGRAM, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(diag)
	if got, want := []uint64{nsOf(ring.fd), nsOf(diag)}, []uint64{th.Inode(), th.Inode()}; !slices.Equal(got, want) {
		t.Errorf("packet and sock_diag sockets in namespaces %v, want %v", got, want)
	}
}

// TestNamespaceThreadServesNothingElse: throughout a capture of another
// namespace, every thread of this process but the one that entered it stays
// in the process's own namespace, and once the namespace is closed that
// thread is gone: no goroutine of the capture, nor of anything else, ever
// runs in the wrong namespace.
func TestNamespaceThreadServesNothingElse(t *testing.T) {
	testutil.NeedRoot(t, "entering a network namespace needs CAP_SYS_ADMIN")
	l := lab.New(t, lab.Options{})
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	th, err := netns.Enter(filepath.Join(netns.RunDir, l.Server))
	if err != nil {
		t.Fatal(err)
	}
	tid := strconv.Itoa(th.TID())

	// tasksElsewhere lists the threads not in this process's namespace.
	tasksElsewhere := func() []string {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Error(err)
			return nil
		}
		var out []string
		for _, e := range ents {
			ns, err := os.Readlink(filepath.Join("/proc/self/task", e.Name(), "ns/net"))
			if err != nil {
				continue // the thread ended while listed
			}
			if ns != own {
				out = append(out, e.Name())
			}
		}
		return out
	}
	stop := make(chan struct{})
	type result struct {
		rounds int
		wrong  []string
	}
	done := make(chan result)
	go func() {
		var r result
		for {
			for _, task := range tasksElsewhere() {
				if task != tid && !slices.Contains(r.wrong, task) {
					r.wrong = append(r.wrong, task)
				}
			}
			r.rounds++
			select {
			case <-stop:
				done <- r
				return
			default:
			}
		}
	}()
	_, err = Capture(context.Background(), Options{
		Dir: t.TempDir(), Samples: 3, Interval: 50 * time.Millisecond, Deadline: 10 * time.Second,
		Host: Host{NS: th, PacketWindow: 100 * time.Millisecond},
	})
	close(stop)
	r := <-done
	if err != nil {
		t.Fatal(err)
	}
	if len(r.wrong) > 0 {
		t.Errorf("threads %v other than the namespace's (%s) were in another namespace during the capture", r.wrong, tid)
	}
	if got := tasksElsewhere(); !slices.Equal(got, []string{tid}) {
		t.Errorf("threads in another namespace after the capture: %v, want only %s", got, tid)
	}
	t.Logf("%d looks at every thread during the capture", r.rounds)
	th.Close()
	testutil.Eventually(t, 5*time.Second, "the namespace's thread to end", func() (bool, string) {
		_, err := os.Stat(filepath.Join("/proc/self/task", tid))
		return errors.Is(err, fs.ErrNotExist), fmt.Sprintf("threads elsewhere %v", tasksElsewhere())
	})
	if got := tasksElsewhere(); len(got) > 0 {
		t.Errorf("threads %v still in another namespace after Close", got)
	}
}

// TestCaptureNamesNamespaceWhenCut: the manifest names the namespace a
// capture read even when the capture is stopped before it begins, and a
// capture that runs in a thread of another namespace names that one: what
// looks at every process (the owner's search) is the only part that may be
// left out.
func TestCaptureNamesNamespaceWhenCut(t *testing.T) {
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	capture := func(t *testing.T, given *bundle.NetNS) *bundle.NetNS {
		t.Helper()
		res, err := Capture(stopped, Options{
			Dir: t.TempDir(), Samples: 1, Interval: time.Millisecond, Deadline: 5 * time.Second,
			NetNS: given, Collectors: []Collector{}, Samplers: []Sampler{},
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Manifest.NetNS
	}

	t.Run("given", func(t *testing.T) {
		given := &bundle.NetNS{Inode: 4026532999, NamedBy: bundle.NamedByNetNS, Name: "pod", Path: "/run/netns/pod"}
		for i := range 20 {
			if got := capture(t, given); got == nil || *got != *given {
				t.Fatalf("capture %d: manifest names %+v, want %+v", i, got, given)
			}
		}
	})

	t.Run("self in another namespace", func(t *testing.T) {
		testutil.NeedRoot(t, "a lab namespace needs CAP_SYS_ADMIN")
		l := lab.New(t, lab.Options{})
		ino := testutil.Inode(t, filepath.Join(netns.RunDir, l.Server))
		for i := range 5 {
			var got *bundle.NetNS
			if err := l.Do(l.Server, func() error { got = capture(t, nil); return nil }); err != nil {
				t.Fatal(err)
			}
			if got == nil || got.Inode != ino || got.NamedBy != bundle.NamedBySelf || got.HostNS {
				t.Fatalf("capture %d in namespace %d: manifest names %+v", i, ino, got)
			}
		}
	})
}
