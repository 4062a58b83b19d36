//go:build linux

package collectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"golang.org/x/sys/unix"
)

// needCapture skips a test that needs a packet socket when the process may
// not open one.
func needCapture(t *testing.T) {
	t.Helper()
	if err := canCapture(); err != nil {
		t.Skipf("packet capture needs CAP_NET_RAW (run as root); skipping the real-kernel test: %v", err)
	}
}

// listen opens a TCP listener on 127.0.0.1, closed when the test ends.
// Listening sends no packet, so it can be opened before the sample starts.
func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// loopbackTraffic makes n connections to ln. Each client sends data and
// half-closes; the server reads to EOF and closes; the client waits for that
// FIN. So by the time it returns, the SYN, SYN-ACK and both FINs of each
// connection have been through the stack. It returns the clients' ports.
func loopbackTraffic(t *testing.T, ln net.Listener, n int, data []byte) (clients []int) {
	t.Helper()
	served := make(chan error, 1)
	go func() {
		for range n {
			c, err := ln.Accept()
			if err != nil {
				served <- err
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = io.Copy(io.Discard, c)
			if cerr := c.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				served <- err
				return
			}
		}
		served <- nil
	}()
	for range n {
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		clients = append(clients, c.LocalAddr().(*net.TCPAddr).Port)
		if _, err := c.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("wait for the server's FIN: %v", err)
		}
		c.Close()
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("server: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not finish")
	}
	return clients
}

// sampleRun is one packet sample taken through a real bundle.Writer.
type sampleRun struct {
	err  error
	info *bundle.PacketsInfo
	pcap []byte // nil when the bundle has no pcap
	file string // the pcap, extracted
}

// runSample runs the collector with traffic sent once its socket is bound,
// commits the bundle and reads the pcap back out of it.
func runSample(t *testing.T, ctx context.Context, h Host, traffic func()) sampleRun {
	t.Helper()
	dir := t.TempDir()
	w, err := bundle.NewWriter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &Packets{started: traffic}
	err = p.Collect(ctx, h, w.For(p.Name()))
	path, cerr := w.Commit("sample.tar.zst", &bundle.Manifest{})
	if cerr != nil {
		t.Fatal(cerr)
	}
	run := sampleRun{err: err, info: p.Info(), pcap: testutil.ReadMember(t, path, bundle.PathPackets)}
	if files := w.Files(p.Name()); run.pcap != nil && !cmp.Equal(files, []string{bundle.PathPackets}) {
		t.Errorf("collector files %v", files)
	}
	if run.pcap != nil {
		run.file = filepath.Join(dir, "sample.pcap")
		if err := os.WriteFile(run.file, run.pcap, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return run
}

// segment is one decoded TCP record of the sample.
type segment struct {
	src, dst         int
	syn, ack, fin    bool
	rst, psh         bool
	pktType, addrTyp uint16
	capLen, length   int
	ipLen            int
}

func (s segment) flags() string {
	var b strings.Builder
	for _, f := range []struct {
		on bool
		c  string
	}{{s.syn, "S"}, {s.fin, "F"}, {s.rst, "R"}, {s.psh, "P"}, {s.ack, "A"}} {
		if f.on {
			b.WriteString(f.c)
		}
	}
	return b.String()
}

// segments decodes the sample's TCP records that touch port.
func segments(t *testing.T, run sampleRun, port int) []segment {
	t.Helper()
	r, recs, cis := readPcap(t, run.pcap)
	if r.LinkType() != layers.LinkTypeLinuxSLL {
		t.Fatalf("link type %v, want LINUX_SLL", r.LinkType())
	}
	if run.info != nil && len(recs) != run.info.Packets {
		t.Errorf("%d records, the manifest says %d", len(recs), run.info.Packets)
	}
	var out []segment
	for i, rec := range recs {
		p := gopacket.NewPacket(rec, layers.LinkTypeLinuxSLL, gopacket.Default)
		sll, _ := p.Layer(layers.LayerTypeLinuxSLL).(*layers.LinuxSLL)
		if sll == nil {
			t.Fatalf("record %d: no LINUX_SLL header: %v", i+1, p.ErrorLayer())
		}
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if tcp == nil || ip == nil || int(tcp.SrcPort) != port && int(tcp.DstPort) != port {
			continue
		}
		out = append(out, segment{
			src: int(tcp.SrcPort), dst: int(tcp.DstPort),
			syn: tcp.SYN, ack: tcp.ACK, fin: tcp.FIN, rst: tcp.RST, psh: tcp.PSH,
			pktType: uint16(sll.PacketType), addrTyp: sll.AddrType,
			capLen: cis[i].CaptureLength, length: cis[i].Length, ipLen: int(ip.Length),
		})
	}
	return out
}

// count counts the segments from src to dst with exactly these flags.
func count(segs []segment, src, dst int, flags string) int {
	n := 0
	for _, s := range segs {
		if s.src == src && s.dst == dst && s.flags() == flags {
			n++
		}
	}
	return n
}

func TestPacketsLoopbackHandshakes(t *testing.T) {
	needCapture(t)
	ln, server := listen(t)
	var clients []int
	run := runSample(t, context.Background(), Host{PacketWindow: time.Second}, func() {
		clients = loopbackTraffic(t, ln, 3, []byte("a1 NOOP\r\n"))
	})
	if run.err != nil {
		t.Fatalf("Collect: %v", run.err)
	}
	if run.info == nil || run.pcap == nil {
		t.Fatalf("no sample: info %v, %d pcap bytes", run.info, len(run.pcap))
	}
	info := run.info
	if info.StoppedBy != stoppedByWindow || info.DurationMS < 1000 || info.DurationMS > 3000 {
		t.Errorf("stopped by %q after %.0f ms, want the 1 s window", info.StoppedBy, info.DurationMS)
	}
	if info.Bytes != int64(len(run.pcap)) {
		t.Errorf("manifest says %d bytes, the pcap has %d", info.Bytes, len(run.pcap))
	}
	// Without --port the filter keeps what reaches the listening ports,
	// learnt when the sample started: the server's among them.
	if info.Keeps == nil || !slices.Contains(info.Keeps.ListenPorts, server) || len(info.Keeps.Ports) != 0 || !info.Keeps.FirstSegments {
		t.Fatalf("keeps %+v, want the listening port %d, first segments only, and no focus port", info.Keeps, server)
	}
	want := bundle.PacketsInfo{Filter: filterExpr(nil, info.Keeps.ListenPorts), Snaplen: headerSnaplen, MaxPackets: packetLimitDefault, MaxBytes: packetBytesDefault}
	got := bundle.PacketsInfo{Filter: info.Filter, Snaplen: info.Snaplen, MaxPackets: info.MaxPackets, MaxBytes: info.MaxBytes}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest entry (-want +got):\n%s", diff)
	}

	segs := segments(t, run, server)
	for _, c := range clients {
		// Exactly once each: loopback's outgoing copies are left out.
		for _, w := range []struct {
			src, dst int
			flags    string
		}{{c, server, "S"}, {server, c, "SA"}, {c, server, "FA"}, {server, c, "FA"}} {
			if n := count(segs, w.src, w.dst, w.flags); n != 1 {
				t.Errorf("%d → %d [%s]: %d in the sample, want 1", w.src, w.dst, w.flags, n)
			}
		}
		// The handshake's end: the client's ACK of the SYN-ACK, and its data.
		if n := count(segs, c, server, "A") + count(segs, c, server, "PA"); n == 0 {
			t.Errorf("%d → %d: no ACK or data from the client in the sample", c, server)
		}
	}
	for _, s := range segs {
		if !s.syn && !s.fin && !s.rst && s.dst != server {
			t.Errorf("%d → %d [%s] passed a filter for SYN, FIN, RST and segments to the listening port", s.src, s.dst, s.flags())
		}
		if s.addrTyp != bundle.ARPHRDLoopback || s.pktType != 0 {
			t.Errorf("%d → %d [%s]: hatype %d, packet type %d; want loopback, host", s.src, s.dst, s.flags(), s.addrTyp, s.pktType)
		}
		if s.capLen > bundle.SLLHeaderLen+headerSnaplen || s.length != bundle.SLLHeaderLen+s.ipLen {
			t.Errorf("%d → %d [%s]: record of %d/%d bytes for a %d-byte packet", s.src, s.dst, s.flags(), s.capLen, s.length, s.ipLen)
		}
	}

	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Log("tcpdump not on PATH: the sample was not read with it")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, tcpdump, "-nr", run.file, "tcp[tcpflags] & tcp-syn != 0").Output()
	if err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	for _, c := range clients {
		for _, w := range []string{
			fmt.Sprintf("127.0.0.1.%d > 127.0.0.1.%d: Flags [S],", c, server),
			fmt.Sprintf("127.0.0.1.%d > 127.0.0.1.%d: Flags [S.],", server, c),
		} {
			if !strings.Contains(string(out), w) {
				t.Errorf("tcpdump does not show %q in:\n%s", w, out)
			}
		}
	}
	// Every packet in the sample matches the filter the manifest states.
	out, err = exec.CommandContext(ctx, tcpdump, "-nqr", run.file, info.Filter).Output()
	if err != nil {
		t.Fatalf("tcpdump %q: %v", info.Filter, err)
	}
	if n := strings.Count(string(out), "\n"); n != info.Packets {
		t.Errorf("tcpdump %q keeps %d of the %d packets", info.Filter, n, info.Packets)
	}
}

func TestPacketsFocusPort(t *testing.T) {
	needCapture(t)
	ln, server := listen(t)
	var clients []int
	data := []byte(strings.Repeat("x", 300))
	traffic := func() { clients = loopbackTraffic(t, ln, 1, data) }
	run := runSample(t, context.Background(), Host{PacketWindow: 300 * time.Millisecond, Ports: []int{server}}, traffic)
	if run.err != nil {
		t.Fatalf("Collect: %v", run.err)
	}
	if want := filterExpr([]int{server}, nil); run.info.Filter != want {
		t.Errorf("filter %q, want %q", run.info.Filter, want)
	}
	if want := (&bundle.PacketKeeps{Ports: []int{server}, ListenPorts: []int{}}); !cmp.Equal(want, run.info.Keeps) {
		t.Errorf("keeps %+v, want %+v: with --port, only the focus port", run.info.Keeps, want)
	}
	segs := segments(t, run, server)
	c := clients[0]
	if n := count(segs, server, c, "A") + count(segs, c, server, "A"); n == 0 {
		t.Errorf("no pure ACK on the focus port in %v", segs)
	}
	found := false
	for _, s := range segs {
		if s.src == c && s.psh && s.ipLen > len(data) {
			found = true
			// Headers only, but the record says how long the packet was
			// (PACKET_AUXDATA's tp_len).
			if s.capLen != bundle.SLLHeaderLen+headerSnaplen || s.length != bundle.SLLHeaderLen+s.ipLen {
				t.Errorf("data record: %d of %d bytes, want %d of %d", s.capLen, s.length, bundle.SLLHeaderLen+headerSnaplen, bundle.SLLHeaderLen+s.ipLen)
			}
		}
	}
	if !found {
		t.Errorf("the client's data segment is not in %v", segs)
	}
}

func TestPacketsPacketLimit(t *testing.T) {
	needCapture(t)
	ln, _ := listen(t)
	// Two connections make at least eight SYN and FIN packets. The limits
	// are shared between the window's seconds (flowSampler): a one-second
	// window has them all.
	run := runSample(t, context.Background(), Host{PacketWindow: time.Second, PacketLimit: 3}, func() {
		loopbackTraffic(t, ln, 2, []byte("x"))
	})
	if run.err != nil {
		t.Fatalf("Collect: %v", run.err)
	}
	if run.info.StoppedBy != stoppedByPacketLimit || run.info.Packets != 3 || run.info.MaxPackets != 3 {
		t.Errorf("stopped by %q with %d of %d packets, want the packet limit, 3 of 3",
			run.info.StoppedBy, run.info.Packets, run.info.MaxPackets)
	}
	if _, recs, _ := readPcap(t, run.pcap); len(recs) != 3 {
		t.Errorf("%d records in the pcap, want 3", len(recs))
	}
}

func TestPacketsByteLimit(t *testing.T) {
	needCapture(t)
	ln, _ := listen(t)
	// Room for any first record (at most 16 + 20 + 128 bytes), not for the
	// eight SYN and FIN records of two loopback connections (about 90 each).
	const limit = bundle.PcapHeaderLen + 400
	run := runSample(t, context.Background(), Host{PacketWindow: time.Second, PacketBytes: limit}, func() {
		loopbackTraffic(t, ln, 2, []byte("x"))
	})
	if run.err != nil {
		t.Fatalf("Collect: %v", run.err)
	}
	if run.info.StoppedBy != stoppedByByteLimit || run.info.Packets == 0 {
		t.Errorf("stopped by %q with %d packets, want the byte limit", run.info.StoppedBy, run.info.Packets)
	}
	if run.info.Bytes > limit || run.info.Bytes != int64(len(run.pcap)) || run.info.MaxBytes != limit {
		t.Errorf("manifest: %d of %d bytes; the pcap has %d", run.info.Bytes, run.info.MaxBytes, len(run.pcap))
	}
	readPcap(t, run.pcap)
}

// TestPacketsDeadline checks that a sample cut by its context still leaves a
// complete pcap of what was captured, and an error the runner marks timeout.
func TestPacketsDeadline(t *testing.T) {
	needCapture(t)
	ln, server := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	var clients []int
	start := time.Now()
	run := runSample(t, ctx, Host{PacketWindow: 30 * time.Second}, func() {
		clients = loopbackTraffic(t, ln, 1, []byte("x"))
	})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Collect returned %v after it started, long past the 400 ms deadline", elapsed)
	}
	if !errors.Is(run.err, context.DeadlineExceeded) {
		t.Errorf("Collect: %v, want an error wrapping context.DeadlineExceeded", run.err)
	}
	if run.info == nil || run.info.StoppedBy != stoppedByDeadline {
		t.Fatalf("manifest entry %+v, want stopped by the deadline", run.info)
	}
	if run.pcap == nil {
		t.Fatal("the pcap is not in the bundle")
	}
	segs := segments(t, run, server)
	if n := count(segs, clients[0], server, "S"); n != 1 {
		t.Errorf("%d SYNs of the connection made before the deadline, want 1", n)
	}
}

// TestPacketsSignal: a sample cut short by a stop signal (the capture's
// cancel cause StopSignal) records the signal, not the deadline, as the
// manifest's capture-wide stopped_by does.
func TestPacketsSignal(t *testing.T) {
	needCapture(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	run := runSample(t, ctx, Host{PacketWindow: 30 * time.Second}, func() {
		cancel(StopSignal{Signal: syscall.SIGTERM})
	})
	if !errors.Is(run.err, context.Canceled) {
		t.Errorf("Collect: %v, want an error wrapping context.Canceled", run.err)
	}
	if run.info == nil || run.info.StoppedBy != bundle.StoppedBySignal {
		t.Fatalf("manifest entry %+v, want stopped by the signal", run.info)
	}
}

func TestPacketsDisabled(t *testing.T) {
	run := runSample(t, context.Background(), Host{PacketWindow: 0}, nil)
	if run.err != nil || run.info != nil || run.pcap != nil {
		t.Errorf("window 0: error %v, info %v, %d pcap bytes; want nothing", run.err, run.info, len(run.pcap))
	}
}

// TestPacketsWithoutCapNetRaw runs the collector in a child process that has
// no CAP_NET_RAW over this network namespace: a new user namespace, where it
// is root but the namespace's owner is not its own (packet_create() checks
// ns_capable(net->user_ns, CAP_NET_RAW)).
func TestPacketsWithoutCapNetRaw(t *testing.T) {
	const env = "SNAPDIAG_TEST_NO_CAP_NET_RAW"
	if os.Getenv(env) == "1" || errors.Is(canCapture(), unix.EPERM) {
		w, err := bundle.NewWriter(t.TempDir(), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		p := &Packets{}
		err = p.Collect(context.Background(), Host{PacketWindow: time.Second}, w)
		if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "packet capture needs CAP_NET_RAW (run as root)") {
			t.Fatalf("Collect without CAP_NET_RAW: %v; want the hint, wrapping EPERM", err)
		}
		if p.Info() != nil || len(w.Files("")) != 0 {
			t.Errorf("info %v, files %v after a failed open", p.Info(), w.Files(""))
		}
		t.Logf("Collect: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPacketsWithoutCapNetRaw$", "-test.v")
	cmd.Env = append(os.Environ(), env+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Skipf("cannot start a process in a new user namespace: %v", err)
	}
	if err != nil || !strings.Contains(string(out), "needs CAP_NET_RAW") {
		t.Errorf("child without CAP_NET_RAW: %v\n%s", err, out)
	}
	t.Logf("child in a new user namespace:\n%s", out)
}

// canCapture says why this process may not open a packet socket, if it may not.
func canCapture() error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// TestListenPortsHalfOpenFirst: a port with half-open requests in its SYN
// queue comes first, whatever its number and however empty its accept queue,
// so the sample keeps its handshakes even when the port list is cut.
func TestListenPortsHalfOpenFirst(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	// TCP_DEFER_ACCEPT keeps completed handshakes without data as request
	// sockets in SYN_RECV: half-open as sock_diag sees them.
	_, port := testutil.Listen(t, netip.AddrPortFrom(lo, 0), 8, testutil.DeferAccept(60))
	// A lower port without requests, which the port order alone puts first.
	testutil.Listen(t, netip.AddrPortFrom(lo, 1), 8)
	for range 2 {
		testutil.Dial(t, "tcp4", lo, port)
	}
	testutil.Eventually(t, 5*time.Second, "the deferred port first", func() (bool, string) {
		ports, _, err := listenPorts(context.Background(), Host{})
		if err != nil {
			t.Fatal(err)
		}
		return len(ports) > 0 && ports[0] == port, fmt.Sprint(ports)
	})
}
