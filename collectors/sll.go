package collectors

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// LINUX_SLL framing (https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html).
const (
	sllHeaderLen = 16
	sllAddrLen   = 8 // the header's fixed address field
	// vlanTagLen is the 802.1Q tag put back into a packet whose tag the NIC
	// or the kernel had taken out (tp_vlan_tci in PACKET_AUXDATA).
	vlanTagLen = 4
	// linkHeaderMax is what a record adds in front of the network packet.
	linkHeaderMax = sllHeaderLen + vlanTagLen
	// sllVLANTPID is the tag protocol when the kernel does not say.
	sllVLANTPID = 0x8100
)

// tpacket_auxdata status bits, linux/if_packet.h.
const (
	tpStatusVLANValid     = 0x10
	tpStatusVLANTPIDValid = 0x40
)

// cookedMeta is what the kernel says about one packet read from a SOCK_DGRAM
// packet socket: its sockaddr_ll and, when present, its PACKET_AUXDATA. It is
// everything a LINUX_SLL header needs.
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

// vlan reports the 802.1Q tag the kernel took out of the packet, if any.
// The kernel hands such packets to packet sockets with the tag in skb
// metadata (skb_vlan_tag_present), not in the data: libpcap puts it back,
// and so do we, so VLAN traffic reads the same as in tcpdump.
func (m *cookedMeta) vlan() (tpid, tci uint16, ok bool) {
	if !m.HaveAux || m.Aux.Status&tpStatusVLANValid == 0 {
		return 0, 0, false
	}
	tpid = sllVLANTPID
	if m.Aux.Status&tpStatusVLANTPIDValid != 0 && m.Aux.VLANTPID != 0 {
		tpid = m.Aux.VLANTPID
	}
	return tpid, m.Aux.VLANTCI, true
}

// appendSLL appends to b the link header of a LINUX_SLL record for m: packet
// type, ARPHRD type, address length, the address padded to 8 bytes, protocol,
// all big-endian; then, for a packet whose VLAN tag the kernel had taken out,
// the tag, the way libpcap writes it (the header's protocol is the tag
// protocol, followed by the TCI and the packet's own ethertype).
//
// Addresses longer than the header's 8 bytes (InfiniBand's 20) are cut to 8
// and the length field says 8, so readers that reject longer lengths, such
// as gopacket's, still decode the packet.
func appendSLL(b []byte, m *cookedMeta) []byte {
	halen := min(m.HALen, sllAddrLen)
	var addr [sllAddrLen]byte
	copy(addr[:halen], m.Addr[:halen])
	be := binary.BigEndian
	b = be.AppendUint16(b, uint16(m.PktType))
	b = be.AppendUint16(b, m.HAType)
	b = be.AppendUint16(b, uint16(halen))
	b = append(b, addr[:]...)
	if tpid, tci, ok := m.vlan(); ok {
		b = be.AppendUint16(b, tpid)
		b = be.AppendUint16(b, tci)
	}
	return be.AppendUint16(b, m.Protocol)
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
