package redact

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/snapdiag/snapdiag/bundle"
)

// PcapStats counts what a pcap rewrite did.
type PcapStats struct {
	Packets int
	// Truncated counts packets whose captured bytes were cut after the last
	// header that could be rewritten: payloads (which can name hosts), and
	// protocols this package does not parse.
	Truncated int
	// Dropped is a final record cut short in the source (a capture killed
	// mid-write); it is left out rather than copied unrewritten.
	Dropped int
}

// pcapRewriter rewrites the addresses of one pcap file.
type pcapRewriter struct {
	m        *mapper
	linkType bundle.LinkType
	// scratch holds a copy of the bytes a checksum covers, taken before
	// they are rewritten.
	scratch []byte
}

// rewritePcap copies the classic pcap in r to w with every IPv4 and IPv6
// address, every MAC address and every SLL link address replaced by its
// pseudonym, IPv4 header checksums and TCP, UDP and ICMP checksums kept
// right, and payloads cut off after the transport header. It reads through
// bundle's pcap reader, within its default limits: a pcapng or gzip file, an
// unknown link type, a damaged header or a record past the limits is an
// error, since an address that cannot be found cannot be redacted, so the
// file is not copied.
func (m *mapper) rewritePcap(r io.Reader, w io.Writer) (PcapStats, error) {
	var st PcapStats
	pr, err := bundle.NewPcapReader(r, bundle.PcapLimits{})
	if err != nil {
		return st, err
	}
	hdr := pr.Header()
	if !hdr.LinkType.Known() {
		return st, fmt.Errorf("pcap link type %d is not supported", uint16(hdr.LinkType))
	}
	p := &pcapRewriter{m: m, linkType: hdr.LinkType}
	bw := bufio.NewWriterSize(w, 64<<10)
	pw, err := bundle.NewPcapWriter(bw, hdr)
	if err != nil {
		return st, err
	}
	for {
		rec, err := pr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, bundle.ErrTruncated) {
			st.Dropped++
			break
		}
		if err != nil {
			return st, err
		}
		st.Packets++
		data := rec.Data
		if keep := p.packet(data); keep < len(data) {
			st.Truncated++
			data = data[:keep]
		}
		if err := pw.WriteRecord(rec.Time, rec.OrigLen, data); err != nil {
			return st, err
		}
	}
	return st, bw.Flush()
}

// packet rewrites one captured frame in place and returns how many of its
// bytes to keep.
func (p *pcapRewriter) packet(b []byte) int {
	lh, ok := bundle.ParseLink(p.linkType, b)
	if !ok {
		return 0
	}
	if lh.Dst != nil {
		p.m.MAC(lh.Dst)
		p.m.MAC(lh.Src)
	}
	if lh.Addr != nil {
		p.linkAddr(lh.HAType, lh.Addr, lh.AddrLen)
	}
	if !lh.Complete {
		return lh.NetOff
	}
	return p.l3(b, lh.NetOff, lh.EtherType, 0)
}

// linkAddr rewrites an SLL address field: a MAC, a tunnel endpoint's IPv4
// address, or anything else as keyed bytes.
func (p *pcapRewriter) linkAddr(hatype uint16, field []byte, halen int) {
	halen = min(max(halen, 0), len(field))
	a := field[:halen]
	switch {
	case halen == 6 && hatype == bundle.ARPHRDEther:
		p.m.MAC(a)
	case halen == 4 && (hatype == bundle.ARPHRDTunnel || hatype == bundle.ARPHRDSit || hatype == bundle.ARPHRDIPGRE):
		p.m.addrBytes(a)
	default:
		p.m.Bytes(a)
	}
	clear(field[halen:]) // padding: nothing but zeros may remain
}

// l3 rewrites the network layer at b[off:]. et 0 means: tell by the version
// nibble.
func (p *pcapRewriter) l3(b []byte, off int, et uint16, depth int) int {
	if depth > 3 || off >= len(b) {
		return min(off, len(b))
	}
	switch bundle.NetworkType(b, off, et) {
	case bundle.EtherTypeIPv4:
		return p.ipv4(b, off, depth)
	case bundle.EtherTypeIPv6:
		return p.ipv6(b, off, depth)
	case bundle.EtherTypeARP:
		return p.arp(b, off)
	}
	return off
}

// arp rewrites an Ethernet/IPv4 ARP packet's sender and target.
func (p *pcapRewriter) arp(b []byte, off int) int {
	a := b[off:]
	if len(a) < 28 || binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != bundle.EtherTypeIPv4 || a[4] != 6 || a[5] != 4 {
		return off
	}
	p.m.MAC(a[8:14])
	p.m.addrBytes(a[14:18])
	p.m.MAC(a[18:24])
	p.m.addrBytes(a[24:28])
	return off + 28
}

// pseudo is the sum of a transport pseudo-header (RFC 793, RFC 8200 8.1).
func pseudo(src, dst []byte, proto byte, length int) uint32 {
	s := sum(src, 0)
	s = sum(dst, s)
	return s + uint32(proto) + uint32(length)&0xffff + uint32(length)>>16
}

func (p *pcapRewriter) ipv4(b []byte, off int, depth int) int {
	h := b[off:]
	if len(h) < 20 || h[0]>>4 != 4 {
		return off
	}
	ihl := int(h[0]&0x0f) * 4
	if ihl < 20 || len(h) < ihl {
		return off
	}
	oldHdr := append([]byte(nil), h[:ihl]...)
	p.m.addrBytes(h[12:16])
	p.m.addrBytes(h[16:20])
	p.ipv4Options(h[20:ihl])
	fixChecksum(h[:ihl], oldHdr, 10, 0, 0, true, false, false)

	total := int(binary.BigEndian.Uint16(h[2:]))
	if total < ihl {
		total = len(h)
	}
	fragOff := binary.BigEndian.Uint16(h[6:]) & 0x1fff
	more := h[6]&0x20 != 0
	if fragOff != 0 {
		return off + ihl // a later fragment: all payload
	}
	capEnd := off + min(total, len(h))
	complete := total <= len(h) && !more
	l4len := total - ihl
	return p.l4(b, off+ihl, capEnd, h[9], oldHdr[12:16], oldHdr[16:20], h[12:16], h[16:20], l4len, complete, false, depth)
}

// ipv4Options rewrites the addresses of the record route and source route
// options (RFC 791): a list of addresses after a 3-byte header.
func (p *pcapRewriter) ipv4Options(o []byte) {
	for len(o) > 0 {
		switch o[0] {
		case 0: // end of options
			return
		case 1: // no-op
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			clear(o) // malformed: nothing in it may survive
			return
		}
		opt := o[:o[1]]
		if (o[0] == 7 || o[0] == 131 || o[0] == 137) && len(opt) >= 3 {
			for a := 3; a+4 <= len(opt); a += 4 {
				p.m.addrBytes(opt[a : a+4])
			}
		}
		o = o[len(opt):]
	}
}

func (p *pcapRewriter) ipv6(b []byte, off int, depth int) int {
	h := b[off:]
	if len(h) < 40 || h[0]>>4 != 6 {
		return off
	}
	oldSrc := append([]byte(nil), h[8:24]...)
	oldDst := append([]byte(nil), h[24:40]...)
	p.m.addrBytes(h[8:24])
	p.m.addrBytes(h[24:40])
	plen := int(binary.BigEndian.Uint16(h[4:]))
	end := 40 + plen
	if plen == 0 { // a jumbogram, or a header cut short
		end = len(h)
	}
	// The pseudo-header's destination is the final one: the last address
	// of a routing header that still has segments left (RFC 8200 8.1).
	finalOld, finalNew := oldDst, h[24:40]
	nh := h[6]
	pos := 40
	complete := end <= len(h)
	for {
		switch nh {
		case 0, 43, 60, 44, 51: // hop-by-hop, routing, destination, fragment, AH
		default:
			capEnd := off + min(end, len(h))
			return p.l4(b, off+pos, capEnd, nh, oldSrc, finalOld, h[8:24], finalNew, end-pos, complete, true, depth)
		}
		if len(h) < pos+8 {
			return off + min(pos, len(h))
		}
		size := (int(h[pos+1]) + 1) * 8
		switch nh {
		case 44:
			size = 8
			if binary.BigEndian.Uint16(h[pos+2:])&0xfff8 != 0 {
				return off + pos + 8 // a later fragment: all payload
			}
			if h[pos+3]&1 != 0 {
				complete = false
			}
		case 51:
			size = (int(h[pos+1]) + 2) * 4
		}
		if len(h) < pos+size {
			return off + pos
		}
		if nh == 43 {
			rt := h[pos : pos+size]
			var n int
			switch rt[2] {
			case 0, 2:
				n = (size - 8) / 16
			case 4: // segment routing header: last entry + 1 segments
				n = min(int(rt[4])+1, (size-8)/16)
			}
			if n > 0 && rt[3] > 0 {
				last := 8 + (n-1)*16
				if rt[2] == 4 {
					last = 8
				}
				finalOld = append([]byte(nil), rt[last:last+16]...)
				finalNew = rt[last : last+16]
			}
			for i := 0; i < n; i++ {
				p.m.addrBytes(rt[8+i*16 : 24+i*16])
			}
		}
		nh = h[pos]
		pos += size
	}
}

// l4 rewrites the transport header at b[start:capEnd] (capEnd is the end of
// the IP packet's captured part) and fixes its checksum, given the
// pseudo-header addresses before and after mapping. It returns how much of
// b to keep.
func (p *pcapRewriter) l4(b []byte, start, capEnd int, proto byte, srcOld, dstOld, srcNew, dstNew []byte, l4len int, complete, v6 bool, depth int) int {
	if start > capEnd {
		return min(start, len(b))
	}
	seg := b[start:capEnd]
	p.scratch = append(p.scratch[:0], seg...)
	old := p.scratch
	psOld := pseudo(srcOld, dstOld, proto, l4len)
	psNew := pseudo(srcNew, dstNew, proto, l4len)
	switch proto {
	case 6: // TCP
		if len(seg) < 20 {
			return capEnd
		}
		doff := int(seg[12]>>4) * 4
		if doff < 20 || doff > len(seg) {
			doff = min(max(doff, 20), len(seg))
		}
		p.tcpOptions(seg[20:doff])
		fixChecksum(seg, old, 16, psOld, psNew, complete, true, false)
		return start + doff
	case 17: // UDP
		if len(seg) < 8 {
			return capEnd
		}
		fixChecksum(seg, old, 6, psOld, psNew, complete, true, !v6)
		return start + 8
	case 1: // ICMP
		if v6 || len(seg) < 8 {
			return min(start+len(seg), start+8)
		}
		keep := start + 8
		switch seg[0] {
		case 5: // redirect: the gateway
			p.m.addrBytes(seg[4:8])
			keep = start + 8 + p.inner(seg[8:], bundle.EtherTypeIPv4, depth)
		case 3, 4, 11, 12: // errors quote the offending packet
			keep = start + 8 + p.inner(seg[8:], bundle.EtherTypeIPv4, depth)
		}
		fixChecksum(seg, old, 2, 0, 0, complete, false, false)
		return keep
	case 58: // ICMPv6
		if !v6 || len(seg) < 8 {
			return min(start+len(seg), start+8)
		}
		keep := start + p.icmp6(seg, depth)
		fixChecksum(seg, old, 2, psOld, psNew, complete, false, false)
		return keep
	case bundle.IPProtoIPIP:
		return p.l3(b[:capEnd], start, bundle.EtherTypeIPv4, depth+1)
	case bundle.IPProtoIPv6:
		return p.l3(b[:capEnd], start, bundle.EtherTypeIPv6, depth+1)
	}
	return start
}

// inner rewrites the packet an ICMP error quotes and returns how many of its
// bytes to keep.
func (p *pcapRewriter) inner(q []byte, et uint16, depth int) int {
	// The quoted packet is rewritten like any other; its own checksums are
	// updated incrementally, as the quote is cut short. Its scratch copy
	// must not be the outer one's.
	saved := p.scratch
	p.scratch = nil
	keep := p.l3(q, 0, et, depth+1)
	p.scratch = saved
	return keep
}

// icmp6 rewrites the addresses inside an ICMPv6 message and returns how many
// of its bytes to keep.
func (p *pcapRewriter) icmp6(seg []byte, depth int) int {
	opts := -1
	keep := 8
	switch seg[0] {
	case 1, 2, 3, 4: // errors quote the offending packet
		return 8 + p.inner(seg[8:], bundle.EtherTypeIPv6, depth)
	case 130, 131, 132: // MLDv1: the group
		if len(seg) >= 24 {
			p.m.addrBytes(seg[8:24])
			keep = 24
		}
	case 133: // router solicitation
		opts = 8
	case 134: // router advertisement
		opts = 16
	case 135, 136: // neighbour solicitation and advertisement: the target
		if len(seg) >= 24 {
			p.m.addrBytes(seg[8:24])
			opts = 24
		}
	case 137: // redirect: target and destination
		if len(seg) >= 40 {
			p.m.addrBytes(seg[8:24])
			p.m.addrBytes(seg[24:40])
			opts = 40
		}
	}
	if opts < 0 || opts > len(seg) {
		return min(keep, len(seg))
	}
	for o := opts; ; {
		if o+2 > len(seg) {
			return o
		}
		size := int(seg[o+1]) * 8
		if size == 0 || o+size > len(seg) {
			return o
		}
		opt := seg[o : o+size]
		switch opt[0] {
		case 1, 2: // source and target link-layer address
			if size == 8 {
				p.m.MAC(opt[2:8])
			} else {
				p.m.Bytes(opt[2:])
			}
		case 3: // prefix information
			if size != 32 {
				return o
			}
			p.mapNetwork(opt[16:32], int(opt[2]))
		case 25: // recursive DNS servers
			for a := 8; a+16 <= size; a += 16 {
				p.m.addrBytes(opt[a : a+16])
			}
		case 5: // MTU
		default: // redirected header and anything unknown: cut here
			return o
		}
		o += size
	}
}

// mapNetwork maps a network address (prefix of bits) so it stays one.
func (p *pcapRewriter) mapNetwork(a []byte, bits int) {
	p.m.addrBytes(a)
	for i := range a {
		switch {
		case bits >= (i+1)*8:
		case bits > i*8:
			a[i] &= byte(0xff << (8 - (bits - i*8)))
		default:
			a[i] = 0
		}
	}
}

// tcpOptions rewrites the addresses an MPTCP ADD_ADDR option carries
// (RFC 8684 3.4.1): 4 or 16 bytes after kind, length, subtype and id.
func (p *pcapRewriter) tcpOptions(o []byte) {
	for len(o) > 0 {
		switch o[0] {
		case 0:
			return
		case 1:
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			return
		}
		opt := o[:o[1]]
		if opt[0] == 30 && len(opt) >= 8 && opt[2]>>4 == 3 {
			switch len(opt) {
			case 8, 10, 16, 18:
				p.m.addrBytes(opt[4:8])
			case 20, 22, 28, 30:
				p.m.addrBytes(opt[4:20])
			}
		}
		o = o[len(opt):]
	}
}

// sum adds b to s as big-endian 16-bit words, an odd last byte padded with
// zero (RFC 1071).
func sum(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func onesAdd(a, b uint16) uint16 { return fold(uint32(a) + uint32(b)) }

// fixChecksum sets the checksum at seg[cs:] after seg's bytes were rewritten
// from old (the captured part of what the checksum covers, same length) and
// the pseudo-header's sum changed from psOld to psNew.
//
// When the packet was captured whole, the checksum is recomputed if the
// original was right, or was the pseudo-header sum a sender leaves for the
// NIC to finish (CHECKSUM_PARTIAL, which tcpdump calls "incorrect" on
// outgoing packets: tcp_v4_send_check stores ~tcp_v4_check(len, saddr, daddr,
// 0)). Otherwise it is updated incrementally (RFC 1624, eqn. 3, over the
// changed bytes and pseudo-header): a right checksum of a packet cut by the
// snaplen stays right, and a wrong one stays wrong by the same amount, as
// evidence. A partial checksum of a cut packet becomes the new
// pseudo-header's sum. zeroIsNone is UDP over IPv4, where 0 means no
// checksum.
func fixChecksum(seg, old []byte, cs int, psOld, psNew uint32, complete, partialOK, zeroIsNone bool) {
	if cs+2 > len(seg) || len(old) != len(seg) {
		return
	}
	hc := binary.BigEndian.Uint16(old[cs:])
	if zeroIsNone && hc == 0 {
		return
	}
	old[cs], old[cs+1] = 0, 0
	seg[cs], seg[cs+1] = 0, 0
	oS := fold(sum(old, psOld))
	nS := fold(sum(seg, psNew))
	old[cs], old[cs+1] = byte(hc>>8), byte(hc)
	partial := partialOK && hc == fold(psOld)
	var out uint16
	switch {
	case complete && (hc == ^oS || partial):
		out = ^nS
	case partial:
		out = fold(psNew)
	default:
		out = ^onesAdd(onesAdd(^hc, ^oS), nS)
	}
	if zeroIsNone && out == 0 {
		out = 0xffff
	}
	binary.BigEndian.PutUint16(seg[cs:], out)
}
