package collectors

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ringPkt is one packet to lay out in a test block.
type ringPkt struct {
	ts      time.Time
	status  uint32
	origLen uint32
	tci     uint16
	tpid    uint16
	pktType uint8
	haType  uint16
	proto   uint16 // host order
	addr    [8]byte
	data    []byte
}

// ringBlock lays packets out as the kernel's tpacket_rcv() does for a
// SOCK_DGRAM TPACKET_V3 socket: the block descriptor, then per packet its
// tpacket3_hdr, the sockaddr_ll at 48 and the data at 96 (macoff =
// TPACKET_ALIGN(tp_hdrlen) + 16), each packet 16-byte aligned.
func ringBlock(pkts ...ringPkt) []byte {
	ne := binary.NativeEndian
	b := make([]byte, blockDescLen, 4096)
	ne.PutUint32(b[blockStatusOff:], tpStatusUser)
	ne.PutUint32(b[blockNumPkts:], uint32(len(pkts)))
	ne.PutUint32(b[blockFirstPkt:], blockDescLen)
	for i, p := range pkts {
		const mac = 96
		size := (mac + len(p.data) + 15) &^ 15
		h := make([]byte, size)
		if i+1 < len(pkts) {
			ne.PutUint32(h[tp3NextOff:], uint32(size))
		}
		ne.PutUint32(h[tp3Sec:], uint32(p.ts.Unix()))
		ne.PutUint32(h[tp3Nsec:], uint32(p.ts.Nanosecond()))
		ne.PutUint32(h[tp3Snaplen:], uint32(len(p.data)))
		ne.PutUint32(h[tp3Len:], p.origLen)
		ne.PutUint32(h[tp3Status:], p.status)
		ne.PutUint16(h[tp3Mac:], mac)
		ne.PutUint16(h[tp3Mac+2:], mac)
		ne.PutUint32(h[tp3VLANTCI:], uint32(p.tci))
		ne.PutUint16(h[tp3VLANTPID:], p.tpid)
		sll := h[tp3HdrLen:]
		ne.PutUint16(sll[0:], 17) // AF_PACKET
		ne.PutUint16(sll[2:], htons(p.proto))
		ne.PutUint16(sll[8:], p.haType)
		sll[10], sll[11] = p.pktType, 6
		copy(sll[12:20], p.addr[:])
		copy(h[mac:], p.data)
		b = append(b, h...)
	}
	ne.PutUint32(b[blockLen:], uint32(len(b)))
	if len(pkts) > 0 {
		// prb_close_block() stamps the block with its last packet's time.
		last := pkts[len(pkts)-1].ts
		ne.PutUint32(b[blockLastSec:], uint32(last.Unix()))
		ne.PutUint32(b[blockLastNsec:], uint32(last.Nanosecond()))
	}
	return b
}

func TestWalkBlock(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 123456789)
	mac := [8]byte{2, 0x5d, 1, 0, 0, 2}
	in := []ringPkt{
		{ts: t0, origLen: 60, pktType: 0, haType: 1, proto: 0x0800, addr: mac, data: []byte{0x45, 1, 2, 3}},
		{ts: t0.Add(time.Millisecond), status: tpStatusVLANValid, origLen: 1514, tci: 7, tpid: 0x8100,
			pktType: 4, haType: 1, proto: 0x86dd, addr: mac, data: make([]byte, 128)},
	}
	type got struct {
		Meta cookedMeta
		TS   time.Time
		Data []byte
	}
	var out []got
	n, err := walkBlock(ringBlock(in...), func(p *ringPacket) error {
		out = append(out, got{p.meta, p.ts, append([]byte(nil), p.data...)})
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("walkBlock: %d packets, %v", n, err)
	}
	want := []got{
		{cookedMeta{PktType: 0, HAType: 1, HALen: 6, Addr: mac, Protocol: 0x0800, HaveAux: true,
			Aux: auxdata{Len: 60, Snaplen: 4}}, t0, []byte{0x45, 1, 2, 3}},
		{cookedMeta{PktType: 4, HAType: 1, HALen: 6, Addr: mac, Protocol: 0x86dd, HaveAux: true,
			Aux: auxdata{Status: tpStatusVLANValid, Len: 1514, Snaplen: 128, VLANTCI: 7, VLANTPID: 0x8100}},
			t0.Add(time.Millisecond), make([]byte, 128)},
	}
	if diff := cmp.Diff(want, out, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("packets (-want +got):\n%s", diff)
	}
	if h := out[1].Meta.sll(); !h.VLAN || h.TCI != 7 {
		t.Errorf("the VLAN tag in hv1 is not in the LINUX_SLL header: %+v", h)
	}
}

// TestBlockSpan checks the count and the first and last receive times
// blockSpan reads from a block, and that a block with none, or whose stamps
// are out of range or out of order, says nothing.
func TestBlockSpan(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 5)
	b := ringBlock(ringPkt{ts: t0, data: []byte{0x45}}, ringPkt{ts: t0.Add(time.Second / 3), data: []byte{0x45}},
		ringPkt{ts: t0.Add(time.Second / 2), data: []byte{0x45}})
	n, first, last, ok := blockSpan(b)
	if !ok || n != 3 || !first.Equal(t0) || !last.Equal(t0.Add(time.Second/2)) {
		t.Errorf("blockSpan: %d packets from %v to %v (ok %v); want 3 from %v to %v", n, first, last, ok, t0, t0.Add(time.Second/2))
	}
	ne := binary.NativeEndian
	for name, mod := range map[string]func(b []byte){
		"no packets":                func(b []byte) { ne.PutUint32(b[blockNumPkts:], 0) },
		"first packet past the end": func(b []byte) { ne.PutUint32(b[blockFirstPkt:], 1<<30) },
		"last stamp out of range":   func(b []byte) { ne.PutUint32(b[blockLastNsec:], 2e9) },
		"last before first":         func(b []byte) { ne.PutUint32(b[blockLastSec:], 1) },
	} {
		b := slices.Clone(b)
		mod(b)
		if _, _, _, ok := blockSpan(b); ok {
			t.Errorf("%s: blockSpan says ok", name)
		}
	}
}

// TestWalkBlockHostile checks that a block whose offsets point outside it,
// or do not move forward, ends the walk with an error after the packets
// that were sound.
func TestWalkBlockHostile(t *testing.T) {
	good := ringPkt{ts: time.Unix(1, 0), data: []byte{0x45}}
	ne := binary.NativeEndian
	for _, tc := range []struct {
		name  string
		mod   func(b []byte)
		wantN int
	}{
		{"first packet past the end", func(b []byte) { ne.PutUint32(b[blockFirstPkt:], 1<<30) }, 0},
		{"first packet inside the descriptor", func(b []byte) { ne.PutUint32(b[blockFirstPkt:], 8) }, 0},
		{"more packets than written", func(b []byte) { ne.PutUint32(b[blockNumPkts:], 3) }, 2},
		{"next offset zero", func(b []byte) { ne.PutUint32(b[blockDescLen+tp3NextOff:], 0) }, 1},
		{"snap length past the end", func(b []byte) { ne.PutUint32(b[blockDescLen+tp3Snaplen:], 1<<20) }, 0},
		{"data inside the header", func(b []byte) { ne.PutUint16(b[blockDescLen+tp3Mac:], 8) }, 0},
		{"nanoseconds out of range", func(b []byte) { ne.PutUint32(b[blockDescLen+tp3Nsec:], 2e9) }, 0},
	} {
		b := ringBlock(good, good)
		tc.mod(b)
		n, err := walkBlock(b, func(*ringPacket) error { return nil })
		if err == nil || n != tc.wantN {
			t.Errorf("%s: %d packets, error %v; want %d and an error", tc.name, n, err, tc.wantN)
		}
	}
}

// FuzzWalkBlock feeds walkBlock arbitrary blocks: it must never panic, call
// fn with data outside the block, or call it more often than the block has
// room for headers.
func FuzzWalkBlock(f *testing.F) {
	f.Add(ringBlock(ringPkt{ts: time.Unix(1, 0), data: []byte{0x45, 0, 0, 20}}))
	f.Add(ringBlock(ringPkt{data: make([]byte, 64)}, ringPkt{data: make([]byte, 16)}))
	f.Add(make([]byte, blockDescLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		calls := 0
		n, _ := walkBlock(b, func(p *ringPacket) error {
			calls++
			if len(p.data) > len(b) {
				t.Fatalf("%d bytes of data from a %d-byte block", len(p.data), len(b))
			}
			return nil
		})
		if n != calls || calls > len(b)/tp3HdrLen+1 {
			t.Fatalf("%d packets reported, %d calls, from %d bytes", n, calls, len(b))
		}
		if n, first, last, ok := blockSpan(b); ok && (n < 1 || last.Before(first)) {
			t.Fatalf("block span of %d packets from %v to %v", n, first, last)
		}
	})
}
