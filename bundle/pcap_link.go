package bundle

import (
	"encoding/binary"
	"net/netip"
)

// Protocol numbers of the link and network layers, as the kernel's uapi
// headers define them (linux/if_ether.h, linux/in.h, linux/if_arp.h,
// linux/if_packet.h).
const (
	EtherTypeIPv4 = 0x0800 // ETH_P_IP
	EtherTypeARP  = 0x0806 // ETH_P_ARP
	EtherTypeIPv6 = 0x86dd // ETH_P_IPV6
	// 802.1Q and 802.1ad VLAN tags, and the pre-standard QinQ tag: 4 bytes
	// (tag protocol, then TCI) in front of the packet's own ethertype.
	EtherTypeVLAN   = 0x8100 // ETH_P_8021Q
	EtherTypeQinQ   = 0x88a8 // ETH_P_8021AD
	EtherTypeQinQv1 = 0x9100
	// EtherTypeRawIP is no protocol number but a marker some writers put in
	// the ethertype field for a raw IP payload (gopacket's EthernetTypeRaw):
	// the version nibble says which.
	EtherTypeRawIP = 0xffff

	IPProtoICMP   = 1
	IPProtoIPIP   = 4
	IPProtoTCP    = 6
	IPProtoUDP    = 17
	IPProtoIPv6   = 41
	IPProtoICMPv6 = 58

	// IPv4HeaderLen and IPv6HeaderLen are the fixed headers' sizes.
	IPv4HeaderLen = 20
	IPv6HeaderLen = 40
	// IPv4FragMask is the fragment offset bits of the IPv4 flags/offset field.
	IPv4FragMask = 0x1fff

	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagACK = 0x10

	ARPHRDEther    = 1   // ARPHRD_ETHER
	ARPHRDTunnel   = 768 // ARPHRD_TUNNEL: IPIP, the address is an IPv4 endpoint
	ARPHRDLoopback = 772 // ARPHRD_LOOPBACK
	ARPHRDSit      = 776 // ARPHRD_SIT: IPv6 in IPv4, an IPv4 endpoint
	ARPHRDIPGRE    = 778 // ARPHRD_IPGRE: an IPv4 endpoint

	// PacketOutgoing is the packet type (sll_pkttype) of a packet the host
	// sent: PACKET_OUTGOING.
	PacketOutgoing = 4
)

// LINUX_SLL and LINUX_SLL2 framing.
const (
	// SLLHeaderLen is the LINUX_SLL header: packet type, ARPHRD type,
	// address length, an 8-byte address field, protocol; big-endian.
	SLLHeaderLen = 16
	// SLL2HeaderLen is the LINUX_SLL2 header: protocol, reserved, interface
	// index, ARPHRD type, packet type, address length, 8-byte address.
	SLL2HeaderLen = 20
	// SLLAddrLen is the size of the headers' address field.
	SLLAddrLen = 8
	// VLANTagLen is an 802.1Q tag: tag protocol and TCI.
	VLANTagLen = 4
	// SLLHeaderMax is the most a LINUX_SLL record written by AppendSLL puts
	// in front of the network packet: the header and one VLAN tag.
	SLLHeaderMax = SLLHeaderLen + VLANTagLen
)

// SLLHeader is the content of a LINUX_SLL header.
type SLLHeader struct {
	PktType uint8  // sll_pkttype: PACKET_HOST, PACKET_OUTGOING, ...
	HAType  uint16 // sll_hatype: ARPHRD_ETHER, ARPHRD_LOOPBACK, ...
	// Addr is the link address; only its first SLLAddrLen bytes fit.
	Addr []byte
	// Protocol is the ethertype of the packet.
	Protocol uint16
	// VLAN is true when an 802.1Q tag (TPID, TCI) goes back in front of
	// the packet.
	VLAN      bool
	TPID, TCI uint16
}

// AppendSLL appends to b the LINUX_SLL link header h: packet type, ARPHRD
// type, address length, the address padded to 8 bytes, protocol, all
// big-endian; then, for a tagged packet, the tag, the way libpcap writes it
// (the header's protocol is the tag protocol, followed by the TCI and the
// packet's own ethertype).
//
// Addresses longer than the header's 8 bytes (InfiniBand's 20) are cut to 8
// and the length field says 8, so readers that reject longer lengths, such
// as gopacket's, still decode the packet.
func AppendSLL(b []byte, h SLLHeader) []byte {
	halen := min(len(h.Addr), SLLAddrLen)
	var addr [SLLAddrLen]byte
	copy(addr[:], h.Addr[:halen])
	be := binary.BigEndian
	b = be.AppendUint16(b, uint16(h.PktType))
	b = be.AppendUint16(b, h.HAType)
	b = be.AppendUint16(b, uint16(halen))
	b = append(b, addr[:]...)
	if h.VLAN {
		b = be.AppendUint16(b, h.TPID)
		b = be.AppendUint16(b, h.TCI)
	}
	return be.AppendUint16(b, h.Protocol)
}

// maxVLANTags bounds the tags skipped in front of a packet.
const maxVLANTags = 4

// LinkHeader is what the link-layer header of one captured frame says.
// Its byte slices alias the frame, so a rewriter can change them in place.
type LinkHeader struct {
	// NetOff is where the network header starts. When Complete is false the
	// frame ends inside the link header, and NetOff is the end of what
	// could be read of it.
	NetOff   int
	Complete bool
	// EtherType is the network protocol; 0 when the link type does not
	// say and the version nibble of the network header tells.
	EtherType uint16
	// Dst and Src are an Ethernet frame's MAC addresses.
	Dst, Src []byte
	// HAType, Addr and AddrLen are a LINUX_SLL or LINUX_SLL2 header's
	// ARPHRD type, its whole 8-byte address field and the address length
	// it states (which may exceed the field).
	HAType  uint16
	Addr    []byte
	AddrLen int
}

// ParseLink reads the link-layer header of frame, a record of a file of link
// type lt. It reports false for a link type this package does not know.
func ParseLink(lt LinkType, frame []byte) (LinkHeader, bool) {
	var h LinkHeader
	be := binary.BigEndian
	switch lt {
	case LinkEthernet:
		if len(frame) < 14 {
			return h, true
		}
		h.Dst, h.Src = frame[0:6], frame[6:12]
		h.NetOff, h.EtherType, h.Complete = skipVLAN(frame, 12)
	case LinkLinuxSLL:
		if len(frame) < SLLHeaderLen {
			return h, true
		}
		h.HAType, h.AddrLen, h.Addr = be.Uint16(frame[2:]), int(be.Uint16(frame[4:])), frame[6:14]
		h.NetOff, h.EtherType, h.Complete = skipVLAN(frame, 14)
	case LinkLinuxSLL2:
		if len(frame) < SLL2HeaderLen {
			return h, true
		}
		h.HAType, h.AddrLen, h.Addr = be.Uint16(frame[8:]), int(frame[11]), frame[12:20]
		h.NetOff, h.EtherType, h.Complete = SLL2HeaderLen, be.Uint16(frame[0:]), true
		if isVLAN(h.EtherType) {
			// libpcap puts the tag's TCI and the packet's own ethertype
			// right after the header, as for LINUX_SLL.
			h.NetOff, h.EtherType, h.Complete = skipVLAN(frame, SLL2HeaderLen+2)
		}
	case LinkNull, LinkLoop:
		// The 4-byte address family is in the writer's byte order (NULL) or
		// network order (LOOP), and its IPv6 values differ between BSDs:
		// the version nibble is the reliable guide.
		if len(frame) < 4 {
			return h, true
		}
		h.NetOff, h.Complete = 4, true
	case LinkRaw:
		h.Complete = true
	case LinkIPv4:
		h.EtherType, h.Complete = EtherTypeIPv4, true
	case LinkIPv6:
		h.EtherType, h.Complete = EtherTypeIPv6, true
	default:
		return h, false
	}
	return h, true
}

func isVLAN(et uint16) bool {
	return et == EtherTypeVLAN || et == EtherTypeQinQ || et == EtherTypeQinQv1
}

// skipVLAN reads the ethertype at frame[off:], skipping VLAN tags, and
// returns where the network header starts.
func skipVLAN(frame []byte, off int) (int, uint16, bool) {
	for range maxVLANTags + 1 {
		if len(frame) < off+2 {
			return min(off, len(frame)), 0, false
		}
		et := binary.BigEndian.Uint16(frame[off:])
		if !isVLAN(et) {
			return off + 2, et, true
		}
		off += VLANTagLen
	}
	return min(off, len(frame)), 0, false
}

// NetworkType is the ethertype of the network header at frame[off:] given
// the link's ethertype et: et itself, or, when the link does not say (0, or
// EtherTypeRawIP), IPv4 or IPv6 by the version nibble.
func NetworkType(frame []byte, off int, et uint16) uint16 {
	if et == EtherTypeRawIP {
		et = 0
	}
	if et != 0 || off >= len(frame) {
		return et
	}
	switch frame[off] >> 4 {
	case 4:
		return EtherTypeIPv4
	case 6:
		return EtherTypeIPv6
	}
	return 0
}

// TCPSegment is what the analysis needs of one TCP segment.
type TCPSegment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	// Flags holds the TCPFlag* bits.
	Flags uint8
	// Payload is the segment's payload length from the IP header's length,
	// so a headers-only capture still counts what was sent.
	Payload int
	// TTL is the IPv4 time to live or the IPv6 hop limit as the packet
	// arrived: senders start from a few values (64, 128, 255), so the hops
	// it went through show, and many sources sharing one value hint that
	// one machine forges them.
	TTL uint8
	// Window is the TCP header's window field as sent, unscaled: a SYN's
	// is never scaled (RFC 7323), so it is a fingerprint of the sender's
	// stack.
	Window uint16
}

// Has reports whether every bit of flag is set.
func (s *TCPSegment) Has(flag uint8) bool { return s.Flags&flag == flag }

// maxIPv6ExtHeaders bounds the IPv6 extension headers walked before TCP.
const maxIPv6ExtHeaders = 8

// DecodeTCP decodes frame, a record of a file of link type lt, as IPv4 or
// IPv6 carrying TCP. It reports false for anything else: another protocol,
// a fragment (only the first carries the TCP header, and not always whole),
// or headers cut short.
func DecodeTCP(lt LinkType, frame []byte) (TCPSegment, bool) {
	seg, ok := decodeTCP(lt, frame)
	if !ok {
		return TCPSegment{}, false
	}
	return seg, true
}

func decodeTCP(lt LinkType, frame []byte) (TCPSegment, bool) {
	var seg TCPSegment
	lh, ok := ParseLink(lt, frame)
	if !ok || !lh.Complete {
		return seg, false
	}
	off := lh.NetOff
	ip := frame[off:]
	var tcp []byte
	var l4len int
	switch NetworkType(frame, off, lh.EtherType) {
	case EtherTypeIPv4:
		if len(ip) < IPv4HeaderLen || ip[0]>>4 != 4 {
			return seg, false
		}
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total == 0 {
			// TSO: a segment captured before the NIC split it has no length.
			total = len(ip)
		}
		if ihl < IPv4HeaderLen || len(ip) < ihl || total < ihl || ip[9] != IPProtoTCP {
			return seg, false
		}
		// A fragment: MF set, or a non-zero offset.
		if binary.BigEndian.Uint16(ip[6:])&(0x2000|IPv4FragMask) != 0 {
			return seg, false
		}
		src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		seg.Src, seg.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		seg.TTL = ip[8]
		tcp, l4len = ip[ihl:], total-ihl
	case EtherTypeIPv6:
		if len(ip) < IPv6HeaderLen || ip[0]>>4 != 6 {
			return seg, false
		}
		src, dst := netip.AddrFrom16([16]byte(ip[8:24])).Unmap(), netip.AddrFrom16([16]byte(ip[24:40])).Unmap()
		seg.Src, seg.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		seg.TTL = ip[7]
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if plen == 0 {
			plen = len(ip) - IPv6HeaderLen // a jumbogram or TSO
		}
		nh, pos := ip[6], IPv6HeaderLen
		for range maxIPv6ExtHeaders {
			if nh != 0 && nh != 43 && nh != 60 { // hop-by-hop, routing, destination options
				break
			}
			if len(ip) < pos+8 {
				return seg, false
			}
			nh, pos = ip[pos], pos+(int(ip[pos+1])+1)*8
		}
		if nh != IPProtoTCP || pos > len(ip) {
			return seg, false
		}
		tcp, l4len = ip[pos:], plen-(pos-IPv6HeaderLen)
	default:
		return seg, false
	}
	if len(tcp) < 20 {
		return seg, false
	}
	doff := int(tcp[12]>>4) * 4
	if doff < 20 {
		return seg, false
	}
	be := binary.BigEndian
	seg.Src = netip.AddrPortFrom(seg.Src.Addr(), be.Uint16(tcp[0:]))
	seg.Dst = netip.AddrPortFrom(seg.Dst.Addr(), be.Uint16(tcp[2:]))
	seg.Seq, seg.Ack = be.Uint32(tcp[4:]), be.Uint32(tcp[8:])
	seg.Flags = tcp[13]
	seg.Window = be.Uint16(tcp[14:])
	seg.Payload = max(l4len-doff, 0)
	return seg, true
}
