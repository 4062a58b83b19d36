package lab

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSYNGenChecksums: every frame the generator builds has valid IPv4
// and TCP checksums (a one's complement sum over the covered bytes, the
// checksum included, of 0xffff), a source inside the prefix and the target.
func TestSYNGenChecksums(t *testing.T) {
	o := RateFloodOpts{Target: netip.MustParseAddrPort("10.211.7.1:8080"), Sources: FloodSources}
	g := newSYNGen(o, [6]byte{2, 0x5d, 7, 0, 0, 1}, [6]byte{2, 0x5d, 7, 0, 0, 2})
	var fr [floodFrameLen]byte
	for range 1000 {
		g.next(&fr)
		ip, tcp := fr[14:34], fr[34:58]
		if got := checksum(0, ip); got != 0xffff {
			t.Fatalf("IPv4 header sums to %#x", got)
		}
		pseudo := uint32(checksum(0, ip[12:20])) + 6 + uint32(len(tcp))
		if got := checksum(pseudo, tcp); got != 0xffff {
			t.Fatalf("TCP segment sums to %#x", got)
		}
		src := netip.AddrFrom4([4]byte(ip[12:16]))
		if !FloodSources.Contains(src) || src == FloodSources.Addr() {
			t.Fatalf("source %s outside %s", src, FloodSources)
		}
		if dst := netip.AddrFrom4([4]byte(ip[16:20])); dst != o.Target.Addr() || tcp[13] != 0x02 {
			t.Fatalf("frame to %s with flags %#x, want a SYN to %s", dst, tcp[13], o.Target)
		}
	}
}

// TestLabFloodSYNs floods a listener with 100,000 SYNs at 50,000 a second:
// the server must take them as valid TCP (no checksum errors) and answer
// them with SYN cookies once its queue is full, and its SYN-ACKs must not
// come back to it. The rate the server saw is logged, not asserted.
func TestLabFloodSYNs(t *testing.T) {
	l := New(t, Options{})
	ln, err := l.FloodListener(8080)
	if err != nil {
		t.Fatal(err)
	}
	before, err := l.Counters(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const count = 100_000
	f, err := l.FloodSYNs(ctx, RateFloodOpts{Target: ln.Addr, Count: count, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	<-f.Done()
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(f.Start)
	after, err := l.Counters(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	d := after.Sub(before)
	t.Logf("sent %d SYNs in %v (%.0f/s); the server took in %d segments (%.0f/s), sent %d cookies, dropped %d at listen",
		f.Sent(), elapsed.Round(time.Millisecond), float64(f.Sent())/elapsed.Seconds(), d["Tcp.InSegs"],
		float64(d["Tcp.InSegs"])/elapsed.Seconds(), d["TcpExt.SyncookiesSent"], d["TcpExt.ListenDrops"])
	if f.Sent() != count {
		t.Errorf("sent %d SYNs, want %d", f.Sent(), count)
	}
	if d["Tcp.InCsumErrors"] != 0 || d["Tcp.InErrs"] != 0 {
		t.Errorf("the server found %d bad checksums, %d errors", d["Tcp.InCsumErrors"], d["Tcp.InErrs"])
	}
	if d["TcpExt.SyncookiesSent"] == 0 {
		t.Errorf("no SYN cookies sent: the flood did not fill the queue (%d segments in)", d["Tcp.InSegs"])
	}
	// SYN-ACKs looping back would be segments with ACK to a listener:
	// TcpExt.SyncookiesFailed counts ACKs that carried no valid cookie.
	if d["TcpExt.SyncookiesFailed"] != 0 || d["Tcp.OutRsts"] != 0 {
		t.Errorf("the server's answers came back: %d bad cookies, %d resets", d["TcpExt.SyncookiesFailed"], d["Tcp.OutRsts"])
	}
}

// TestLabFloodSYNsPinned: a sender pinned to an allowed CPU floods as
// asked; a CPU out of range, or one the process may not run on, is an
// error from FloodSYNs itself, never a flood that silently sends nothing
// (a benchmark would measure a quiet host and call it flooded).
func TestLabFloodSYNsPinned(t *testing.T) {
	l := New(t, Options{})
	ln, err := l.FloodListener(8080)
	if err != nil {
		t.Fatal(err)
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	first, notAllowed := -1, -1
	for c := range 1024 {
		switch {
		case allowed.IsSet(c) && first < 0:
			first = c
		case !allowed.IsSet(c):
			notAllowed = c
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const count = 1000
	f, err := l.FloodSYNs(ctx, RateFloodOpts{Target: ln.Addr, Count: count, Duration: 10 * time.Second, CPUs: []int{first}})
	if err != nil {
		t.Fatal(err)
	}
	<-f.Done()
	if err := f.Stop(); err != nil || f.Sent() != count {
		t.Errorf("pinned to CPU %d: sent %d of %d, %v", first, f.Sent(), count, err)
	}
	for cpu, want := range map[int]string{-1: "out of range", 1 << 20: "out of range", notAllowed: "pin the sender"} {
		f, err := l.FloodSYNs(ctx, RateFloodOpts{Target: ln.Addr, Count: count, CPUs: []int{cpu}})
		if err == nil {
			f.Stop()
			t.Errorf("CPUs [%d]: a flood started (sent %d), want an error", cpu, f.Sent())
		} else if !strings.Contains(err.Error(), want) {
			t.Errorf("CPUs [%d]: %v, want the pin refused (%q)", cpu, err, want)
		}
	}
}
