package collectors

import (
	"bytes"
	"context"
	"net/netip"
	"path/filepath"
	"slices"
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
	if got, want := devNames(members[bundle.SampleFile(0, bundle.SampleDev)]), devNames(inside); !slices.Equal(got, want) {
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

// devNames lists the interfaces of a /proc/net/dev, sorted.
func devNames(dev []byte) []string {
	var names []string
	for line := range strings.Lines(string(dev)) {
		if name, _, ok := strings.Cut(line, ":"); ok {
			names = append(names, strings.TrimSpace(name))
		}
	}
	slices.Sort(names)
	return names
}
