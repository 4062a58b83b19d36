package collectors

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// tpacket_auxdata status bits, linux/if_packet.h.
const (
	tpStatusVLANValid     = 0x10
	tpStatusVLANTPIDValid = 0x40
)

// cookedMeta is what the kernel says about one packet read from a SOCK_DGRAM
// packet socket: its sockaddr_ll and, when present, its PACKET_AUXDATA. It is
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

// auxdata is struct tpacket_auxdata (linux/if_packet.h), delivered as a
// PACKET_AUXDATA control message.
type auxdata struct {
	Status   uint32
	Len      uint32 // length of the packet before the filter cut it
	Snaplen  uint32
	Mac      uint16
	Net      uint16
	VLANTCI  uint16
	VLANTPID uint16
}

// auxdataLen is sizeof(struct tpacket_auxdata).
const auxdataLen = 20

// parseAuxdata decodes struct tpacket_auxdata, in the kernel's (native) byte
// order.
func parseAuxdata(b []byte) (auxdata, error) {
	if len(b) < auxdataLen {
		return auxdata{}, fmt.Errorf("tpacket_auxdata: %d bytes, want %d", len(b), auxdataLen)
	}
	ne := binary.NativeEndian
	return auxdata{
		Status:   ne.Uint32(b[0:]),
		Len:      ne.Uint32(b[4:]),
		Snaplen:  ne.Uint32(b[8:]),
		Mac:      ne.Uint16(b[12:]),
		Net:      ne.Uint16(b[14:]),
		VLANTCI:  ne.Uint16(b[16:]),
		VLANTPID: ne.Uint16(b[18:]),
	}, nil
}

// parseTimespec decodes the timestamp of an SCM_TIMESTAMPNS control message:
// struct __kernel_timespec (two 64-bit fields) for SO_TIMESTAMPNS_NEW and for
// the old option on 64-bit kernels, two 32-bit fields for the old option on
// 32-bit ones.
func parseTimespec(b []byte) (time.Time, error) {
	ne := binary.NativeEndian
	var sec, nsec int64
	switch len(b) {
	case 16:
		sec, nsec = int64(ne.Uint64(b[0:])), int64(ne.Uint64(b[8:]))
	case 8:
		sec, nsec = int64(int32(ne.Uint32(b[0:]))), int64(int32(ne.Uint32(b[4:])))
	default:
		return time.Time{}, fmt.Errorf("timestamp: %d bytes, want 8 or 16", len(b))
	}
	if nsec < 0 || nsec >= int64(time.Second) {
		return time.Time{}, fmt.Errorf("timestamp: %d nanoseconds out of range", nsec)
	}
	return time.Unix(sec, nsec), nil
}

// sll is the LINUX_SLL header of the packet m describes. The kernel hands
// VLAN packets to packet sockets with the tag in skb metadata
// (skb_vlan_tag_present), not in the data: libpcap puts it back, and so do
// we, so VLAN traffic reads the same as in tcpdump. The tag protocol is
// 802.1Q unless PACKET_AUXDATA says otherwise (TP_STATUS_VLAN_TPID_VALID).
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
