package collectors

import (
	"encoding/binary"
	"math"

	"github.com/snapdiag/snapdiag/bundle"
)

// Packet status bits (tp_status), linux/if_packet.h.
const (
	tpStatusVLANValid     = 0x10
	tpStatusVLANTPIDValid = 0x40
)

// cookedMeta is what the kernel says about one packet read from a SOCK_DGRAM
// packet socket: its sockaddr_ll and, when present, its auxdata. It is
// everything a LINUX_SLL header (bundle.SLLHeader) needs.
type cookedMeta struct {
	PktType uint8  // sll_pkttype: PACKET_HOST, PACKET_OUTGOING, ...
	HAType  uint16 // sll_hatype: ARPHRD_ETHER, ARPHRD_LOOPBACK, ...
	HALen   uint8  // sll_halen
	Addr    [8]byte
	// Protocol is sll_protocol in host order: the ethertype.
	Protocol uint16
	Aux      auxdata
	HaveAux  bool
}

// auxdata is what the kernel says about a packet beyond its address: the
// fields of struct tpacket_auxdata (linux/if_packet.h), which a TPACKET_V3
// ring gives in each packet's tpacket3_hdr.
type auxdata struct {
	Status   uint32
	Len      uint32 // length of the packet before the filter cut it
	Snaplen  uint32
	VLANTCI  uint16
	VLANTPID uint16
}

// sll is the LINUX_SLL header of the packet m describes. The kernel hands
// VLAN packets to packet sockets with the tag in skb metadata
// (skb_vlan_tag_present), not in the data: libpcap puts it back, and so do
// we, so VLAN traffic reads the same as in tcpdump. The tag protocol is
// 802.1Q unless the kernel says otherwise (TP_STATUS_VLAN_TPID_VALID).
func (m *cookedMeta) sll() bundle.SLLHeader {
	h := bundle.SLLHeader{PktType: m.PktType, HAType: m.HAType, Addr: m.Addr[:min(int(m.HALen), len(m.Addr))], Protocol: m.Protocol}
	if m.HaveAux && m.Aux.Status&tpStatusVLANValid != 0 {
		h.VLAN, h.TPID, h.TCI = true, bundle.EtherTypeVLAN, m.Aux.VLANTCI
		if m.Aux.Status&tpStatusVLANTPIDValid != 0 && m.Aux.VLANTPID != 0 {
			h.TPID = m.Aux.VLANTPID
		}
	}
	return h
}

// origLen is the packet's length on the wire as the pcap record states it:
// the link header plus the network packet before the filter cut it.
func (m *cookedMeta) origLen(hdrLen, captured int) int {
	n := int64(captured)
	if m.HaveAux && int64(m.Aux.Len) > n {
		n = int64(m.Aux.Len)
	}
	// A pcap record's length field is 32 bits; keep clear of int's limit on
	// 32-bit platforms too.
	return int(min(int64(hdrLen)+n, math.MaxInt32))
}

// htons converts a 16-bit value between host and network byte order; it is
// its own inverse. sockaddr_ll's sll_protocol is in network order.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return binary.BigEndian.Uint16(b[:])
}
