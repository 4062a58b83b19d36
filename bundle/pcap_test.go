package bundle

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// testPcapRecords is a small sample of SLL records: a SYN over IPv4 with a
// VLAN tag put back, a SYN-ACK over IPv6, and an ARP request.
func testPcapRecords(t testing.TB) [][]byte {
	t.Helper()
	tcp4 := serializeLayers(t,
		&layers.IPv4{Version: 4, IHL: 5, TTL: 57, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 0, 0, 2}, DstIP: net.IP{10, 0, 0, 1}},
		&layers.TCP{SrcPort: 40000, DstPort: 143, Seq: 7, SYN: true, Window: 1024})
	tcp6 := serializeLayers(t,
		&layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 61, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")},
		&layers.TCP{SrcPort: 143, DstPort: 40000, Seq: 9, Ack: 8, SYN: true, ACK: true, Window: 29200})
	arp := make([]byte, 28)
	return [][]byte{
		append(AppendSLL(nil, SLLHeader{HAType: ARPHRDEther, Addr: []byte{2, 0, 0, 0, 0, 1}, Protocol: EtherTypeIPv4, VLAN: true, TPID: EtherTypeVLAN, TCI: 100}), tcp4...),
		append(AppendSLL(nil, SLLHeader{PktType: PacketOutgoing, HAType: ARPHRDLoopback, Addr: make([]byte, 6), Protocol: EtherTypeIPv6}), tcp6...),
		append(AppendSLL(nil, SLLHeader{HAType: ARPHRDEther, Addr: []byte{2, 0, 0, 0, 0, 1}, Protocol: EtherTypeARP}), arp...),
	}
}

func serializeLayers(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for _, l := range ls {
		if tcp, ok := l.(*layers.TCP); ok {
			tcp.SetNetworkLayerForChecksum(ls[0].(gopacket.NetworkLayer))
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var pcapTime = time.Date(2026, 11, 25, 13, 0, 0, 123_456_000, time.UTC)

func writeTestPcap(t testing.TB, h PcapHeader, recs [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	pw, err := NewPcapWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if err := pw.WriteRecord(pcapTime.Add(time.Duration(i)*time.Millisecond), len(r)+100, r); err != nil {
			t.Fatal(err)
		}
	}
	if pw.Size() != int64(buf.Len()) {
		t.Errorf("Size() = %d, wrote %d", pw.Size(), buf.Len())
	}
	return buf.Bytes()
}

// TestPcapWriterGopacket checks what the writer writes against gopacket's
// reader, an independent decoder.
func TestPcapWriterGopacket(t *testing.T) {
	recs := testPcapRecords(t)
	data := writeTestPcap(t, PcapHeader{Snaplen: 148, LinkType: LinkLinuxSLL}, recs)
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeLinuxSLL || r.Snaplen() != 148 {
		t.Errorf("link type %v, snap length %d", r.LinkType(), r.Snaplen())
	}
	for i, want := range recs {
		got, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !bytes.Equal(got, want) || ci.Length != len(want)+100 || !ci.Timestamp.Equal(pcapTime.Add(time.Duration(i)*time.Millisecond)) {
			t.Errorf("record %d: %d of %d bytes at %v", i, ci.CaptureLength, ci.Length, ci.Timestamp)
		}
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Errorf("after the last record: %v", err)
	}
}

// TestPcapRoundTrip reads back what the writer wrote, in both byte orders
// and both timestamp resolutions.
func TestPcapRoundTrip(t *testing.T) {
	recs := testPcapRecords(t)
	for _, h := range []PcapHeader{
		{Order: binary.LittleEndian, Snaplen: 148, LinkType: LinkLinuxSLL},
		{Order: binary.BigEndian, Snaplen: 148, LinkType: LinkLinuxSLL},
		{Order: binary.LittleEndian, Nanosecond: true, Snaplen: 65535, LinkType: LinkLinuxSLL},
		{Order: binary.BigEndian, Nanosecond: true, Snaplen: 65535, LinkType: LinkLinuxSLL},
	} {
		data := writeTestPcap(t, h, recs)
		pr, err := NewPcapReader(bytes.NewReader(data), PcapLimits{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(h, pr.Header(), cmp.Comparer(func(a, b binary.ByteOrder) bool { return a.String() == b.String() })); diff != "" {
			t.Errorf("header (-want +got):\n%s", diff)
		}
		for i, want := range recs {
			rec, err := pr.Next()
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			at := pcapTime.Add(time.Duration(i) * time.Millisecond)
			if !bytes.Equal(rec.Data, want) || rec.OrigLen != len(want)+100 || !rec.Time.Equal(at) {
				t.Errorf("%v record %d: %d of %d bytes at %v", h.Order, i, len(rec.Data), rec.OrigLen, rec.Time)
			}
		}
		if _, err := pr.Next(); err != io.EOF {
			t.Errorf("after the last record: %v, want io.EOF", err)
		}
		if pr.Packets() != len(recs) {
			t.Errorf("Packets() = %d", pr.Packets())
		}
	}
}

// gzipped compresses data.
func gzipped(data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestPcapReaderRefuses(t *testing.T) {
	good := writeTestPcap(t, PcapHeader{Snaplen: 148, LinkType: LinkLinuxSLL}, testPcapRecords(t))
	// A record claiming more than the snap length.
	long := bytes.Clone(good)
	binary.LittleEndian.PutUint32(long[PcapHeaderLen+8:], 149)
	// A record over MaxRecord, in a file whose snap length allows it.
	huge := writeTestPcap(t, PcapHeader{Snaplen: 1 << 30, LinkType: LinkLinuxSLL}, nil)
	huge = binary.LittleEndian.AppendUint64(huge, 0)
	huge = binary.LittleEndian.AppendUint32(huge, 1<<30)
	huge = binary.LittleEndian.AppendUint32(huge, 1<<30)
	version := bytes.Clone(good)
	binary.LittleEndian.PutUint16(version[4:], 3)
	for _, tc := range []struct {
		name string
		data []byte
		lim  PcapLimits
		want error // of NewPcapReader, or of the first Next that fails
		// header is true when NewPcapReader must fail.
		header bool
	}{
		{name: "gzip", data: gzipped(good), want: ErrNotPcap, header: true},
		{name: "pcapng", data: append([]byte{0x0a, 0x0d, 0x0d, 0x0a}, good[4:]...), want: ErrNotPcap, header: true},
		{name: "text", data: []byte("not a pcap at all\n"), want: ErrNotPcap, header: true},
		{name: "empty", want: ErrNotPcap, header: true},
		{name: "version 3", data: version, want: ErrNotPcap, header: true},
		{name: "cut in header", data: good[:10], want: ErrTruncated, header: true},
		{name: "cut in record header", data: good[:PcapHeaderLen+8], want: ErrTruncated},
		{name: "cut in record", data: good[:len(good)-3], want: ErrTruncated},
		{name: "record over snap length", data: long, want: ErrCorrupt},
		{name: "record over MaxRecord", data: huge, want: ErrLimit},
		{name: "packets over MaxPackets", data: good, lim: PcapLimits{MaxPackets: 2}, want: ErrLimit},
		{name: "bytes over MaxBytes", data: good, lim: PcapLimits{MaxBytes: int64(len(good) - 1)}, want: ErrLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(tc.data)}
			pr, err := NewPcapReader(cr, tc.lim)
			if tc.header {
				if !errors.Is(err, tc.want) {
					t.Fatalf("NewPcapReader: %v, want %v", err, tc.want)
				}
				if errors.Is(tc.want, ErrNotPcap) && !errors.Is(err, ErrFormat) {
					t.Errorf("%v is not an ErrFormat", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for {
				_, err = pr.Next()
				if err != nil {
					break
				}
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Next: %v, want %v", err, tc.want)
			}
			if _, again := pr.Next(); again != err {
				t.Errorf("Next after an error: %v, want %v again", again, err)
			}
		})
	}
	// A gzip stream is refused at its magic number: whatever it inflates
	// to, nothing past the first buffer's read is decompressed.
	bomb := gzipped(make([]byte, 64<<20))
	cr := &countingReader{r: bytes.NewReader(bomb)}
	if _, err := NewPcapReader(cr, PcapLimits{}); !errors.Is(err, ErrNotPcap) || cr.n > len(bomb) {
		t.Errorf("gzip bomb: %v after %d bytes", err, cr.n)
	}
}

// TestPcapReaderMatchesGopacket reads files gopacket's writer made, in
// nanosecond resolution too.
func TestPcapReaderMatchesGopacket(t *testing.T) {
	recs := testPcapRecords(t)
	for _, nano := range []bool{false, true} {
		var buf bytes.Buffer
		w := pcapgo.NewWriter(&buf)
		if nano {
			w = pcapgo.NewWriterNanos(&buf)
		}
		if err := w.WriteFileHeader(65535, layers.LinkTypeLinuxSLL); err != nil {
			t.Fatal(err)
		}
		at := time.Unix(1_700_000_000, 123_456_789)
		for _, r := range recs {
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(r), Length: 1500}, r); err != nil {
				t.Fatal(err)
			}
		}
		pr, err := NewPcapReader(&buf, PcapLimits{})
		if err != nil {
			t.Fatal(err)
		}
		want := at.Truncate(time.Microsecond)
		if nano {
			want = at
		}
		for i := range recs {
			rec, err := pr.Next()
			if err != nil || !bytes.Equal(rec.Data, recs[i]) || rec.OrigLen != 1500 || !rec.Time.Equal(want) {
				t.Errorf("nano=%v record %d: %v at %v, %v", nano, i, rec.OrigLen, rec.Time, err)
			}
		}
	}
}

func TestDecodeTCP(t *testing.T) {
	recs := testPcapRecords(t)
	for _, tc := range []struct {
		name string
		lt   LinkType
		data []byte
		want TCPSegment
		ok   bool
	}{
		{"sll vlan ipv4 syn", LinkLinuxSLL, recs[0], TCPSegment{
			Src: netip.MustParseAddrPort("10.0.0.2:40000"), Dst: netip.MustParseAddrPort("10.0.0.1:143"), Seq: 7, Flags: TCPFlagSYN, TTL: 57, Window: 1024}, true},
		{"sll ipv6 syn-ack", LinkLinuxSLL, recs[1], TCPSegment{
			Src: netip.MustParseAddrPort("[fd00::1]:143"), Dst: netip.MustParseAddrPort("[fd00::2]:40000"), Seq: 9, Ack: 8, Flags: TCPFlagSYN | TCPFlagACK, TTL: 61, Window: 29200}, true},
		{"sll arp", LinkLinuxSLL, recs[2], TCPSegment{}, false},
		{"raw ipv4", LinkRaw, recs[0][SLLHeaderMax:], TCPSegment{
			Src: netip.MustParseAddrPort("10.0.0.2:40000"), Dst: netip.MustParseAddrPort("10.0.0.1:143"), Seq: 7, Flags: TCPFlagSYN, TTL: 57, Window: 1024}, true},
		{"ipv6 link type", LinkIPv6, recs[1][SLLHeaderLen:], TCPSegment{
			Src: netip.MustParseAddrPort("[fd00::1]:143"), Dst: netip.MustParseAddrPort("[fd00::2]:40000"), Seq: 9, Ack: 8, Flags: TCPFlagSYN | TCPFlagACK, TTL: 61, Window: 29200}, true},
		{"cut tcp header", LinkLinuxSLL, recs[0][:len(recs[0])-1], TCPSegment{}, false},
		{"unknown link type", LinkType(147), recs[0], TCPSegment{}, false},
	} {
		got, ok := DecodeTCP(tc.lt, tc.data)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v", tc.name, ok)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// FuzzAppendSLL checks that every header AppendSLL builds decodes, with
// gopacket's LINUX_SLL decoder and with ParseLink, to the fields it was
// built from.
func FuzzAppendSLL(f *testing.F) {
	f.Add(uint8(0), uint16(1), []byte{2, 0xfc, 0, 0, 0, 1}, uint16(0x0800), false, uint16(0), uint16(0), []byte{0x45})
	f.Add(uint8(4), uint16(772), []byte{}, uint16(0x86dd), true, uint16(0x8100), uint16(100), []byte{})
	f.Add(uint8(1), uint16(32), bytes.Repeat([]byte{9}, 20), uint16(0x0806), true, uint16(0x88a8), uint16(7), []byte{1, 2})
	f.Fuzz(func(t *testing.T, pktType uint8, haType uint16, addr []byte, proto uint16, vlan bool, tpid, tci uint16, payload []byte) {
		if isVLAN(proto) {
			return // a packet's own ethertype is never a tag's
		}
		if vlan && !isVLAN(tpid) {
			tpid = EtherTypeVLAN
		}
		h := SLLHeader{PktType: pktType, HAType: haType, Addr: addr, Protocol: proto, VLAN: vlan, TPID: tpid, TCI: tci}
		rec := append(AppendSLL(nil, h), payload...)

		var sll layers.LinuxSLL
		if err := sll.DecodeFromBytes(rec, gopacket.NilDecodeFeedback); err != nil {
			t.Fatalf("decode %x: %v", rec, err)
		}
		n := min(len(addr), SLLAddrLen)
		wantProto, hdr := proto, SLLHeaderLen
		if vlan {
			wantProto, hdr = tpid, SLLHeaderMax
		}
		switch {
		case sll.PacketType != layers.LinuxSLLPacketType(pktType):
			t.Errorf("packet type %d, want %d", sll.PacketType, pktType)
		case sll.AddrType != haType:
			t.Errorf("address type %d, want %d", sll.AddrType, haType)
		case int(sll.AddrLen) != n || !bytes.Equal(sll.Addr, addr[:n]):
			t.Errorf("address %d %x, want %d %x", sll.AddrLen, sll.Addr, n, addr[:n])
		case uint16(sll.EthernetType) != wantProto:
			t.Errorf("protocol %#x, want %#x", uint16(sll.EthernetType), wantProto)
		case len(rec) != hdr+len(payload) || !bytes.Equal(rec[hdr:], payload):
			t.Errorf("record of %d bytes, want a %d-byte header and the payload", len(rec), hdr)
		}
		if vlan {
			if got := binary.BigEndian.Uint16(sll.Payload); got != tci {
				t.Errorf("TCI %#x, want %#x", got, tci)
			}
		}
		lh, ok := ParseLink(LinkLinuxSLL, rec)
		if !ok || !lh.Complete || lh.NetOff != hdr || lh.EtherType != proto || lh.HAType != haType || lh.AddrLen != n {
			t.Errorf("ParseLink = %+v, want the network header at %d, protocol %#x", lh, hdr, proto)
		}
	})
}

// FuzzPcapReader feeds the reader arbitrary files: it must not panic, must
// stay within its limits, and must fail only with the package's errors.
func FuzzPcapReader(f *testing.F) {
	good := writeTestPcap(f, PcapHeader{Snaplen: 148, LinkType: LinkLinuxSLL}, testPcapRecords(f))
	f.Add(good)
	f.Add(writeTestPcap(f, PcapHeader{Order: binary.BigEndian, Nanosecond: true, Snaplen: 65535, LinkType: LinkEthernet}, testPcapRecords(f)))
	f.Add(gzipped(good))
	f.Add(good[:len(good)-5])
	lim := PcapLimits{MaxRecord: 4096, MaxPackets: 64, MaxBytes: 64 << 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		pr, err := NewPcapReader(bytes.NewReader(data), lim)
		if err != nil {
			if !errors.Is(err, ErrNotPcap) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("NewPcapReader: %v wraps none of the package's errors", err)
			}
			return
		}
		read := int64(PcapHeaderLen)
		for {
			rec, err := pr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrLimit) {
					t.Fatalf("Next: %v wraps none of the package's errors", err)
				}
				break
			}
			if len(rec.Data) > lim.MaxRecord {
				t.Fatalf("record of %d bytes", len(rec.Data))
			}
			read += RecordSize(len(rec.Data))
			DecodeTCP(pr.LinkType(), rec.Data)
		}
		if pr.Packets() > lim.MaxPackets || read > lim.MaxBytes {
			t.Errorf("read %d packets, %d bytes, past the limits", pr.Packets(), read)
		}
	})
}

// FuzzDecodeTCP feeds the link-layer and TCP decoders arbitrary frames of
// every link type.
func FuzzDecodeTCP(f *testing.F) {
	for _, r := range testPcapRecords(f) {
		f.Add(uint16(LinkLinuxSLL), r)
	}
	f.Fuzz(func(t *testing.T, lt uint16, frame []byte) {
		lh, ok := ParseLink(LinkType(lt), frame)
		if ok && (lh.NetOff < 0 || lh.NetOff > len(frame)) {
			t.Fatalf("network header at %d of a %d-byte frame", lh.NetOff, len(frame))
		}
		DecodeTCP(LinkType(lt), frame)
	})
}

// gzipPcapBomb is a packet sample compressed with gzip: a pcap header and
// records of 60 zero bytes inflating to about inflated bytes, made of one
// small gzip member repeated (a gzip stream may hold many members, and
// readers inflate them all), so it costs nothing to build.
func gzipPcapBomb(inflated int64) []byte {
	const recLen = 60
	var chunk []byte
	for len(chunk) < 1<<20 {
		var rec [PcapRecordHeaderLen]byte
		binary.LittleEndian.PutUint32(rec[8:], recLen)
		binary.LittleEndian.PutUint32(rec[12:], recLen)
		chunk = append(append(chunk, rec[:]...), make([]byte, recLen)...)
	}
	var head bytes.Buffer
	if _, err := NewPcapWriter(&head, PcapHeader{Snaplen: 148, LinkType: LinkLinuxSLL}); err != nil {
		panic(err)
	}
	out := gzipped(head.Bytes())
	member := gzipped(chunk)
	for n := int64(0); n < inflated; n += int64(len(chunk)) {
		out = append(out, member...)
	}
	return out
}

// gzipPcapBundle is a bundle whose packet sample is gzipPcapBomb(1 GiB),
// beside a manifest, a sysctl and a counter sample that must still be read.
func gzipPcapBundle(testing.TB) []byte { return pcapBundle(gzipPcapBomb(1 << 30)) }

// hugeRecordPcap is a pcap whose header allows 4 GiB records and whose one
// record claims 4 GiB, with no data behind it.
func hugeRecordPcap() []byte {
	var b bytes.Buffer
	if _, err := NewPcapWriter(&b, PcapHeader{Snaplen: math.MaxUint32, LinkType: LinkLinuxSLL}); err != nil {
		panic(err)
	}
	rec := make([]byte, PcapRecordHeaderLen)
	binary.LittleEndian.PutUint32(rec[8:], math.MaxUint32)
	binary.LittleEndian.PutUint32(rec[12:], math.MaxUint32)
	return append(b.Bytes(), rec...)
}

// pcapBundle is a bundle whose packet sample is pcap, beside a manifest, a
// sysctl and a counter sample that must still be read.
func pcapBundle(pcap []byte) []byte {
	m := testManifest()
	m.Format = Format
	m.Collectors = []CollectorStatus{
		{Name: "sysctls", Status: StatusOK},
		{Name: "samples", Status: StatusOK},
		{Name: "packets", Status: StatusOK, Files: []string{PathPackets}},
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return zst(tarOf(true,
		reg(PathManifest, manifest),
		reg(SampleFile(0, SampleNetstat), []byte("TcpExt: ListenOverflows ListenDrops\nTcpExt: 0 0\n")),
		reg(SysctlPath("net.ipv4.tcp_syncookies"), []byte("1\n")),
		reg(PathPackets, pcap),
	))
}

// FuzzDecodeTCPMatchesGopacket compares DecodeTCP with gopacket's decoders,
// an independent implementation: where both find a TCP segment they must
// agree on it, and a frame gopacket decodes whole to IPv4 or IPv6 and TCP
// must decode here too.
func FuzzDecodeTCPMatchesGopacket(f *testing.F) {
	for _, r := range testPcapRecords(f) {
		f.Add(true, r)
		f.Add(false, r[SLLHeaderMax:])
	}
	f.Fuzz(func(t *testing.T, sll bool, frame []byte) {
		lt, glt := LinkRaw, layers.LinkTypeRaw
		if sll {
			lt, glt = LinkLinuxSLL, layers.LinkTypeLinuxSLL
		} else if len(frame) > 0 && frame[0]>>4 == 6 {
			glt = layers.LinkTypeIPv6
		} else {
			glt = layers.LinkTypeIPv4
		}
		got, ok := DecodeTCP(lt, frame)
		p := gopacket.NewPacket(frame, glt, gopacket.Default)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		// gopacket does not check the version nibble against the
		// ethertype; DecodeTCP refuses such a header.
		var src, dst net.IP
		var ttl uint8
		switch ip := p.NetworkLayer().(type) {
		case *layers.IPv4:
			src, dst, ttl = ip.SrcIP, ip.DstIP, ip.TTL
			if ip.Version != 4 {
				tcp = nil
			}
		case *layers.IPv6:
			src, dst, ttl = ip.SrcIP, ip.DstIP, ip.HopLimit
			if ip.Version != 6 {
				tcp = nil
			}
		default:
			tcp = nil
		}
		if tcp == nil || p.ErrorLayer() != nil || p.Metadata().Truncated {
			return
		}
		if !ok {
			t.Fatalf("gopacket decodes a TCP segment %v:%d > %v:%d, DecodeTCP does not", src, tcp.SrcPort, dst, tcp.DstPort)
		}
		s, _ := netip.AddrFromSlice(src)
		d, _ := netip.AddrFromSlice(dst)
		want := TCPSegment{Src: netip.AddrPortFrom(s.Unmap(), uint16(tcp.SrcPort)), Dst: netip.AddrPortFrom(d.Unmap(), uint16(tcp.DstPort)),
			Seq: tcp.Seq, Ack: tcp.Ack, Flags: tcp.Contents[13], Payload: got.Payload, TTL: ttl, Window: tcp.Window}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("(-gopacket +DecodeTCP):\n%s", diff)
		}
	})
}
