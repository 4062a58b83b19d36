package collectors

import (
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/snapdiag/snapdiag/bundle"
)

// seg4 is a TCP segment between 192.0.2.1 (client) and 192.0.2.2 (server).
func seg4(t testing.TB, s tcpSeg, toServer bool) []byte {
	ip := ip4(layers.IPProtocolTCP)
	if !toServer {
		ip.SrcIP, ip.DstIP = net.IPv4(192, 0, 2, 2), net.IPv4(192, 0, 2, 1)
	}
	tcp := s.layer()
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, tcp, gopacket.Payload(s.payload))
}

func TestFirstSegmentThinner(t *testing.T) {
	if newFirstSegmentThinner(nil) != nil {
		t.Error("a thinner without listening ports")
	}
	th := newFirstSegmentThinner([]int{8080})
	th.limit = 2
	now := time.Unix(1_700_000_000, 0)
	data := []byte("a1 LOGIN\r\n")
	steps := []struct {
		name string
		pkt  []byte
		at   time.Duration
		want bool
	}{
		{"SYN", seg4(t, tcpSeg{src: 50000, dst: 8080, flags: "S"}, true), 0, true},
		{"SYN-ACK", seg4(t, tcpSeg{src: 8080, dst: 50000, flags: "SA"}, false), 0, true},
		{"final ACK", seg4(t, tcpSeg{src: 50000, dst: 8080, flags: "A"}, true), 0, true},
		{"first data", seg4(t, tcpSeg{src: 50000, dst: 8080, flags: "PA", payload: data}, true), 0, true},
		{"more data", seg4(t, tcpSeg{src: 50000, dst: 8080, flags: "PA", payload: data}, true), 0, false},
		{"server's ACK", seg4(t, tcpSeg{src: 8080, dst: 50000, flags: "A"}, false), 0, true},
		{"an established flow's ACK", seg4(t, tcpSeg{src: 50001, dst: 8080, flags: "A"}, true), 0, false},
		{"its FIN", seg4(t, tcpSeg{src: 50001, dst: 8080, flags: "FA"}, true), 0, true},
		{"ACK to another port", seg4(t, tcpSeg{src: 50001, dst: 9090, flags: "A"}, true), 0, true},
		// A handshake whose client resets after one ACK: the RST ends it.
		{"SYN-ACK 2", seg4(t, tcpSeg{src: 8080, dst: 50002, flags: "SA"}, false), 0, true},
		{"ACK 2", seg4(t, tcpSeg{src: 50002, dst: 8080, flags: "A"}, true), 0, true},
		{"RST 2", seg4(t, tcpSeg{src: 50002, dst: 8080, flags: "R"}, true), 0, true},
		{"after the RST", seg4(t, tcpSeg{src: 50002, dst: 8080, flags: "A"}, true), 0, false},
		// Two handshakes fill the table of 2; the third clears it, and
		// for 3 s every segment to the port is written.
		{"SYN-ACK 3", seg4(t, tcpSeg{src: 8080, dst: 50003, flags: "SA"}, false), 0, true},
		{"SYN-ACK 4", seg4(t, tcpSeg{src: 8080, dst: 50004, flags: "SA"}, false), 0, true},
		{"SYN-ACK 5 clears", seg4(t, tcpSeg{src: 8080, dst: 50005, flags: "SA"}, false), time.Second, true},
		{"ACK 3 in the grace", seg4(t, tcpSeg{src: 50003, dst: 8080, flags: "A"}, true), 2 * time.Second, true},
		{"ACK 5", seg4(t, tcpSeg{src: 50005, dst: 8080, flags: "A"}, true), 5 * time.Second, true},
		{"ACK 4 after the grace", seg4(t, tcpSeg{src: 50004, dst: 8080, flags: "A"}, true), 5 * time.Second, false},
		{"not TCP", udp4(t, 50000, 8080), 5 * time.Second, true},
	}
	for _, s := range steps {
		if got := keepRaw(th, s.pkt, now.Add(s.at)); got != s.want {
			t.Errorf("%s: kept %v, want %v", s.name, got, s.want)
		}
	}
	if diff := cmp.Diff([2]int{4, 1}, [2]int{th.dropped, th.cleared}); diff != "" {
		t.Errorf("dropped, cleared (-want +got):\n%s", diff)
	}
}

// FuzzFirstSegmentThinner feeds the thinner arbitrary packets: it must
// never panic, and its table stays within its bound.
func FuzzFirstSegmentThinner(f *testing.F) {
	f.Add(seg4(f, tcpSeg{src: 8080, dst: 50000, flags: "SA"}, false))
	f.Add(seg4(f, tcpSeg{src: 50000, dst: 8080, flags: "A"}, true))
	f.Add([]byte{0x45})
	th := newFirstSegmentThinner([]int{8080})
	th.limit = 16
	f.Fuzz(func(t *testing.T, pkt []byte) {
		keepRaw(th, pkt, time.Unix(1_700_000_000, 0))
		if len(th.awaiting) > th.limit {
			t.Fatalf("%d handshakes awaited, bound %d", len(th.awaiting), th.limit)
		}
	})
}

// keepRaw decodes pkt, from its network header on, as the sample does, and
// asks th.
func keepRaw(th *firstSegmentThinner, pkt []byte, now time.Time) bool {
	seg, ok := bundle.DecodeTCP(bundle.LinkRaw, pkt)
	return th.keep(&seg, ok, now)
}
