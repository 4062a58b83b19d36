package collectors

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Layout of a TPACKET_V3 receive ring (linux/if_packet.h). Every block starts
// with struct tpacket_block_desc; the packets follow, each a struct
// tpacket3_hdr, then a struct sockaddr_ll at TPACKET_ALIGN(sizeof(struct
// tpacket3_hdr)), then the packet at tp_mac. All fields are in the kernel's
// (native) byte order.
const (
	// tpacket_block_desc: version, offset_to_priv, then struct
	// tpacket_hdr_v1: block_status, num_pkts, offset_to_first_pkt,
	// blk_len, seq_num (8-byte aligned), ts_first_pkt, ts_last_pkt.
	blockStatusOff = 8
	blockNumPkts   = 12
	blockFirstPkt  = 16
	blockLen       = 20
	blockLastSec   = 40
	blockLastNsec  = 44
	blockDescLen   = 48
	// tpacket3_hdr: tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len,
	// tp_status, tp_mac, tp_net, then hv1: tp_rxhash, tp_vlan_tci,
	// tp_vlan_tpid, and padding up to 48 bytes.
	tp3NextOff  = 0
	tp3Sec      = 4
	tp3Nsec     = 8
	tp3Snaplen  = 12
	tp3Len      = 16
	tp3Status   = 20
	tp3Mac      = 24
	tp3VLANTCI  = 32
	tp3VLANTPID = 36
	tp3HdrLen   = 48
	// sockaddr_ll: family, protocol (network order), ifindex, hatype,
	// pkttype, halen, addr[8].
	sllLen = 20

	// tpStatusUser is TP_STATUS_USER in a block's status: the kernel
	// retired it (full, or its timeout fired) and it is the reader's until
	// the reader writes TP_STATUS_KERNEL (0) back.
	tpStatusUser = 1
)

// ringPacket is one packet of a retired ring block.
type ringPacket struct {
	meta cookedMeta
	ts   time.Time
	// data is the packet from its network header on, tp_snaplen bytes, in
	// the ring's memory: valid until the block goes back to the kernel.
	data []byte
}

// walkBlock decodes the packets of one retired TPACKET_V3 block and calls fn
// with each, in order; fn must not keep p.data. It trusts nothing in the
// block: every offset and length is checked against the block, the walk
// moves forward by at least one header per packet, and a block that breaks
// a rule ends with an error after the packets decoded so far. It returns how
// many packets fn was called with.
func walkBlock(b []byte, fn func(p *ringPacket) error) (int, error) {
	if len(b) < blockDescLen {
		return 0, fmt.Errorf("ring block: %d bytes, want at least %d", len(b), blockDescLen)
	}
	ne := binary.NativeEndian
	num := ne.Uint32(b[blockNumPkts:])
	if num == 0 {
		return 0, nil
	}
	end := uint64(ne.Uint32(b[blockLen:]))
	if end > uint64(len(b)) || end < blockDescLen {
		// blk_len covers the descriptor and the packets; a block the
		// kernel retired by timeout still says how far it was filled.
		end = uint64(len(b))
	}
	off := uint64(ne.Uint32(b[blockFirstPkt:]))
	var p ringPacket
	for i := range num {
		if off < blockDescLen || off+tp3HdrLen+sllLen > end {
			return int(i), fmt.Errorf("ring block: packet %d of %d at offset %d, outside the block's %d bytes", i+1, num, off, end)
		}
		h := b[off:]
		snap := uint64(ne.Uint32(h[tp3Snaplen:]))
		mac := uint64(ne.Uint16(h[tp3Mac:]))
		if mac < tp3HdrLen+sllLen || off+mac+snap > end {
			return int(i), fmt.Errorf("ring block: packet %d: %d bytes at %d past the block's end", i+1, snap, off+mac)
		}
		nsec := ne.Uint32(h[tp3Nsec:])
		if nsec >= uint32(time.Second) {
			return int(i), fmt.Errorf("ring block: packet %d: %d nanoseconds out of range", i+1, nsec)
		}
		sll := h[tp3HdrLen : tp3HdrLen+sllLen]
		p.meta = cookedMeta{
			Protocol: ne.Uint16(sll[2:]),
			HAType:   ne.Uint16(sll[8:]),
			PktType:  sll[10],
			HALen:    sll[11],
			HaveAux:  true,
			Aux: auxdata{
				Status:   ne.Uint32(h[tp3Status:]),
				Len:      ne.Uint32(h[tp3Len:]),
				Snaplen:  uint32(snap),
				VLANTCI:  uint16(ne.Uint32(h[tp3VLANTCI:])),
				VLANTPID: ne.Uint16(h[tp3VLANTPID:]),
			},
		}
		// sll_protocol is in network order, as in recvfrom's address.
		p.meta.Protocol = htons(p.meta.Protocol)
		copy(p.meta.Addr[:], sll[12:20])
		// tp_sec is 32 bits: unsigned, so it holds until 2106.
		p.ts = time.Unix(int64(ne.Uint32(h[tp3Sec:])), int64(nsec))
		p.data = h[mac : mac+snap : mac+snap]
		if err := fn(&p); err != nil {
			return int(i), err
		}
		next := uint64(ne.Uint32(h[tp3NextOff:]))
		if i+1 < num && next < tp3HdrLen {
			return int(i + 1), fmt.Errorf("ring block: packet %d: next offset %d, want at least %d", i+1, next, tp3HdrLen)
		}
		off += next
	}
	return int(num), nil
}

// blockSpan reads how many packets a retired block holds and the receive
// times of its first and last: the first packet's own stamp, and the
// descriptor's ts_last_pkt, which prb_close_block() copies from the last
// packet's. (The descriptor's ts_first_pkt is when the block was opened,
// which may be long before its first packet.) ok is false when the block
// says nothing sound; like walkBlock it trusts nothing in it.
func blockSpan(b []byte) (n int, first, last time.Time, ok bool) {
	if len(b) < blockDescLen {
		return 0, first, last, false
	}
	ne := binary.NativeEndian
	num := ne.Uint32(b[blockNumPkts:])
	off := uint64(ne.Uint32(b[blockFirstPkt:]))
	lastNsec := ne.Uint32(b[blockLastNsec:])
	if num == 0 || off < blockDescLen || off+tp3HdrLen > uint64(len(b)) || lastNsec >= uint32(time.Second) {
		return 0, first, last, false
	}
	nsec := ne.Uint32(b[off+tp3Nsec:])
	if nsec >= uint32(time.Second) {
		return 0, first, last, false
	}
	first = time.Unix(int64(ne.Uint32(b[off+tp3Sec:])), int64(nsec))
	last = time.Unix(int64(ne.Uint32(b[blockLastSec:])), int64(lastNsec))
	return int(min(num, 1<<30)), first, last, !last.Before(first)
}
