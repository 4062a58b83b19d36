package collectors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/snapdiag/snapdiag/bundle"
)

func TestAppendSLL(t *testing.T) {
	eth := cookedMeta{PktType: 0, HAType: 1, HALen: 6, Addr: [8]byte{2, 0xfc, 0, 0, 0, 1, 0xee, 0xee}, Protocol: bundle.EtherTypeIPv4}
	vlan := eth
	vlan.HaveAux = true
	vlan.Aux = auxdata{Status: tpStatusVLANValid, VLANTCI: 0x2064}
	qinq := vlan
	qinq.Aux.Status |= tpStatusVLANTPIDValid
	qinq.Aux.VLANTPID = 0x88a8
	ib := cookedMeta{HAType: 32, HALen: 20, Addr: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Protocol: bundle.EtherTypeIPv6}
	for _, tc := range []struct {
		name string
		m    cookedMeta
		want []byte
	}{
		// The address bytes past halen are not the kernel's to keep.
		{"ethernet", eth, []byte{0, 0, 0, 1, 0, 6, 2, 0xfc, 0, 0, 0, 1, 0, 0, 0x08, 0x00}},
		{"vlan", vlan, []byte{0, 0, 0, 1, 0, 6, 2, 0xfc, 0, 0, 0, 1, 0, 0, 0x81, 0x00, 0x20, 0x64, 0x08, 0x00}},
		{"qinq", qinq, []byte{0, 0, 0, 1, 0, 6, 2, 0xfc, 0, 0, 0, 1, 0, 0, 0x88, 0xa8, 0x20, 0x64, 0x08, 0x00}},
		{"long address", ib, []byte{0, 0, 0, 32, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0x86, 0xdd}},
	} {
		if diff := cmp.Diff(tc.want, bundle.AppendSLL(nil, tc.m.sll())); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// FuzzCookedSLL checks that the LINUX_SLL header built for every packet the
// kernel can describe decodes, with gopacket's LINUX_SLL decoder, to the
// fields it was built from.
func FuzzCookedSLL(f *testing.F) {
	f.Add(uint8(0), uint16(1), uint8(6), []byte{2, 0xfc, 0, 0, 0, 1}, uint16(0x0800), uint32(0), uint16(0), uint16(0), []byte{0x45})
	f.Add(uint8(4), uint16(772), uint8(6), []byte{}, uint16(0x86dd), uint32(tpStatusVLANValid), uint16(100), uint16(0), []byte{})
	f.Add(uint8(1), uint16(32), uint8(20), bytes.Repeat([]byte{9}, 20), uint16(0x0806), uint32(0x50), uint16(7), uint16(0x88a8), []byte{1, 2})
	f.Fuzz(func(t *testing.T, pktType uint8, haType uint16, haLen uint8, addr []byte, proto uint16, status uint32, tci, tpid uint16, payload []byte) {
		m := cookedMeta{PktType: pktType, HAType: haType, HALen: haLen, Protocol: proto, HaveAux: true,
			Aux: auxdata{Status: status, VLANTCI: tci, VLANTPID: tpid}}
		copy(m.Addr[:], addr)
		rec := append(bundle.AppendSLL(nil, m.sll()), payload...)

		var sll layers.LinuxSLL
		if err := sll.DecodeFromBytes(rec, gopacket.NilDecodeFeedback); err != nil {
			t.Fatalf("decode %x: %v", rec, err)
		}
		n := int(min(haLen, 8))
		wantProto, wantTCI := proto, uint16(0)
		hdr := bundle.SLLHeaderLen
		if h := m.sll(); h.VLAN {
			wantProto, wantTCI = h.TPID, h.TCI
			hdr += bundle.VLANTagLen
		}
		switch {
		case sll.PacketType != layers.LinuxSLLPacketType(pktType):
			t.Errorf("packet type %d, want %d", sll.PacketType, pktType)
		case sll.AddrType != haType:
			t.Errorf("address type %d, want %d", sll.AddrType, haType)
		case int(sll.AddrLen) != n || !bytes.Equal(sll.Addr, m.Addr[:n]):
			t.Errorf("address %d %x, want %d %x", sll.AddrLen, sll.Addr, n, m.Addr[:n])
		case uint16(sll.EthernetType) != wantProto:
			t.Errorf("protocol %#x, want %#x", uint16(sll.EthernetType), wantProto)
		case len(rec) != hdr+len(payload) || !bytes.Equal(rec[hdr:], payload):
			t.Errorf("record of %d bytes, want a %d-byte header and the payload", len(rec), hdr)
		}
		if hdr > bundle.SLLHeaderLen {
			inner := sll.Payload
			if got := binary.BigEndian.Uint16(inner); got != wantTCI {
				t.Errorf("TCI %#x, want %#x", got, wantTCI)
			}
			if got := binary.BigEndian.Uint16(inner[2:]); got != proto {
				t.Errorf("inner protocol %#x, want %#x", got, proto)
			}
		}
		if got := m.origLen(hdr, len(payload)); got < hdr+len(payload) {
			t.Errorf("original length %d shorter than the record, %d", got, hdr+len(payload))
		}
	})
}

func readPcap(t *testing.T, data []byte) (*pcapgo.Reader, [][]byte, []gopacket.CaptureInfo) {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read pcap header: %v", err)
	}
	var recs [][]byte
	var cis []gopacket.CaptureInfo
	for {
		d, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return r, recs, cis
		}
		if err != nil {
			t.Fatalf("read record %d: %v", len(recs)+1, err)
		}
		recs, cis = append(recs, d), append(cis, ci)
	}
}

func TestPcapSampleLimits(t *testing.T) {
	pkt := tcp4(t, tcpSeg{src: 50000, dst: 143, flags: "S"}) // 40 bytes
	m := cookedMeta{HAType: bundle.ARPHRDLoopback, Protocol: bundle.EtherTypeIPv4, HaveAux: true, Aux: auxdata{Len: 1500}}
	rec := bundle.PcapRecordHeaderLen + bundle.SLLHeaderLen + len(pkt)
	for _, tc := range []struct {
		name       string
		maxPackets int
		maxBytes   int64
		wantN      int
		wantStop   string
	}{
		{"packet limit", 3, 1 << 20, 3, stoppedByPacketLimit},
		{"byte limit", 100, int64(bundle.PcapHeaderLen + 2*rec + rec - 1), 2, stoppedByByteLimit},
		{"byte limit exactly met", 100, int64(bundle.PcapHeaderLen + 2*rec), 2, stoppedByByteLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			s, err := newPcapSample(&buf, headerSnaplen, tc.maxPackets, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			stop := ""
			for i := 0; i < 10 && stop == ""; i++ {
				if stop, err = s.add(&m, pkt, time.Unix(1_700_000_000, int64(i)*1000)); err != nil {
					t.Fatal(err)
				}
			}
			if stop != tc.wantStop || s.packets != tc.wantN {
				t.Fatalf("stopped by %q after %d packets, want %q after %d", stop, s.packets, tc.wantStop, tc.wantN)
			}
			if s.bytes != int64(buf.Len()) || s.bytes > tc.maxBytes {
				t.Errorf("counted %d bytes, wrote %d, limit %d", s.bytes, buf.Len(), tc.maxBytes)
			}
			r, recs, cis := readPcap(t, buf.Bytes())
			if r.LinkType() != layers.LinkTypeLinuxSLL || r.Snaplen() != headerSnaplen+bundle.SLLHeaderMax {
				t.Errorf("link type %v, snap length %d", r.LinkType(), r.Snaplen())
			}
			if len(recs) != tc.wantN {
				t.Fatalf("%d records, want %d", len(recs), tc.wantN)
			}
			if cis[0].Length != bundle.SLLHeaderLen+1500 || cis[0].CaptureLength != bundle.SLLHeaderLen+len(pkt) {
				t.Errorf("record lengths %d of %d, want %d of %d", cis[0].CaptureLength, cis[0].Length, bundle.SLLHeaderLen+len(pkt), bundle.SLLHeaderLen+1500)
			}
			p := gopacket.NewPacket(recs[0], layers.LinkTypeLinuxSLL, gopacket.Default)
			if tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP); tcp == nil || !tcp.SYN || tcp.DstPort != 143 {
				t.Errorf("record 1 does not decode to the SYN: %v", p)
			}
		})
	}
}
