// Package sockdiag dumps TCP sockets from the kernel's NETLINK_SOCK_DIAG
// (inet_diag) interface, the source ss reads, and decodes the replies.
//
// Talking to the kernel (sockdiag_linux.go) is kept apart from decoding
// (decode.go): the decoders are pure functions over bytes, with explicit
// length checks and encoding/binary, so they can be fuzzed and can never
// read past what the kernel sent.
package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// Address families of inet_diag requests and replies (AF_INET, AF_INET6).
const (
	FamilyInet  uint8 = 2
	FamilyInet6 uint8 = 10
)

// TCP states as the kernel numbers them (include/net/tcp_states.h).
const (
	StateEstablished uint8 = 1
	StateSynSent     uint8 = 2
	StateSynRecv     uint8 = 3
	StateFinWait1    uint8 = 4
	StateFinWait2    uint8 = 5
	StateTimeWait    uint8 = 6
	StateClose       uint8 = 7
	StateCloseWait   uint8 = 8
	StateLastAck     uint8 = 9
	StateListen      uint8 = 10
	StateClosing     uint8 = 11
	StateNewSynRecv  uint8 = 12
)

// State masks for Dump (TCPF_* in include/net/tcp_states.h).
const (
	// StatesListen asks for LISTEN sockets only.
	StatesListen uint32 = 1 << StateListen
	// StatesSynRecv asks for SYN_RECV sockets. inet_diag_dump_icsk() adds
	// TCPF_NEW_SYN_RECV to any request that has TCPF_SYN_RECV, so this also
	// returns the request sockets of half-open connections (reported by
	// inet_req_diag_fill() with state TCP_SYN_RECV).
	StatesSynRecv uint32 = 1 << StateSynRecv
	// StatesAll asks for every TCP state, TCP_ESTABLISHED to TCP_NEW_SYN_RECV.
	// It leaves out TCPF_BOUND_INACTIVE (6.8 and later): bound sockets that
	// never connected or listened are not connections, and ss -a leaves them
	// out too.
	StatesAll uint32 = 1<<(StateNewSynRecv+1) - 1
)

// Attribute types of inet_diag replies (INET_DIAG_* in
// include/uapi/linux/inet_diag.h).
const (
	attrInfo      = 2
	attrSkMemInfo = 7
	attrShutdown  = 8
	attrV6Only    = 11
)

// Extension bits of a request's idiag_ext, a bit mask of 1<<(INET_DIAG_x-1).
const (
	// ExtInfo asks for INET_DIAG_INFO (struct tcp_info).
	ExtInfo uint8 = 1 << (attrInfo - 1)
	// ExtSkMemInfo asks for INET_DIAG_SKMEMINFO (the sk_meminfo array that
	// ss -m prints), which holds the socket's own drop counter.
	ExtSkMemInfo uint8 = 1 << (attrSkMemInfo - 1)
)

// skMemInfoDrops is SK_MEMINFO_DROPS, the index of sk_drops in
// INET_DIAG_SKMEMINFO's array of __u32 (include/uapi/linux/sock_diag.h). The
// array has grown over time; a kernel sends as many entries as it knows
// (sock_diag_put_meminfo()).
const skMemInfoDrops = 8

// Wire sizes of the structures read and written here.
const (
	sizeofNlMsghdr   = 16 // struct nlmsghdr
	sizeofNlMsgerr   = 4  // the error field of struct nlmsgerr
	sizeofDiagSockID = 48 // struct inet_diag_sockid
	sizeofDiagReqV2  = 8 + sizeofDiagSockID
	sizeofDiagMsg    = 4 + sizeofDiagSockID + 20 // struct inet_diag_msg
	sizeofRtattr     = 4
)

// Netlink message types and flags (include/uapi/linux/netlink.h,
// sock_diag.h).
const (
	nlmsgNoop        = 0x1
	nlmsgError       = 0x2
	nlmsgDone        = 0x3
	nlmsgOverrun     = 0x4
	sockDiagByFamily = 20
	// tcpDiagGetSock is TCPDIAG_GETSOCK, the request type of the original
	// inet_diag interface; its replies have that type too.
	tcpDiagGetSock = 18
	nlmFRequest    = 0x1
	nlmFDump       = 0x300
	ipprotoTCP     = 6
	rtaAlignTo     = 4
	nlmsgAlignTo   = 4
)

// ErrTruncated is wrapped by decoding errors about input shorter than the
// structure it should hold.
var ErrTruncated = errors.New("truncated")

// Msg is one socket of a dump: struct inet_diag_msg and the attributes that
// snapdiag uses. Dump reuses one Msg for every socket, so a callback must copy
// what it keeps.
type Msg struct {
	Family uint8
	// State is the kernel's TCP state (StateEstablished, ...). Request
	// sockets report StateSynRecv.
	State uint8
	// Timer is which timer runs: 0 none, 1 retransmit, 2 keepalive,
	// 3 TIME_WAIT, 4 zero window probe (inet_sk_diag_fill()).
	Timer   uint8
	Retrans uint8
	Src     netip.AddrPort
	Dst     netip.AddrPort
	// IfIndex is the bound device (sk_bound_dev_if), 0 when none.
	IfIndex uint32
	// Cookie is the kernel's socket cookie (sock_gen_cookie()).
	Cookie uint64
	// Expires is the time left on the running timer, in milliseconds.
	Expires uint32
	// RQueue and WQueue are Recv-Q and Send-Q. For LISTEN sockets
	// tcp_diag_get_info() reports the accept queue length and the effective
	// backlog.
	RQueue uint32
	WQueue uint32
	UID    uint32
	Inode  uint32

	// HasShutdown is true when the reply carried INET_DIAG_SHUTDOWN.
	// inet_diag_msg_attrs_fill() always adds it for full sockets, and
	// inet_req_diag_fill() and inet_twsk_diag_fill() never do.
	HasShutdown bool
	Shutdown    uint8
	// V6Only is INET_DIAG_SKV6ONLY, sent for AF_INET6 sockets: a wildcard
	// [::] listener with V6Only false also takes IPv4 connections.
	V6Only bool
	// HasInfo is true when the reply carried INET_DIAG_INFO; InfoLen is the
	// length of the kernel's struct tcp_info.
	HasInfo bool
	InfoLen int
	Info    TCPInfo

	// HasDrops is true when the reply carried INET_DIAG_SKMEMINFO long
	// enough to hold SK_MEMINFO_DROPS (4.7 and later kernels).
	HasDrops bool
	// Drops is the socket's own drop counter, sk_drops. On a listener it
	// counts every drop of the listen path: tcp_listendrop() bumps it
	// together with the namespace's TcpExt.ListenDrops, so the sum over a
	// namespace's listeners is that counter's share of listen drops. It is
	// a 32-bit counter in the kernel and wraps.
	Drops uint32
}

// Request reports whether m is a request socket (a half-open connection in
// the listener's SYN queue) rather than a full socket. Both report TCP_SYN_RECV,
// but inet_req_diag_fill() sends no attributes at all, while a full socket in
// SYN_RECV (a TCP Fast Open child, already in the accept queue) always has
// INET_DIAG_SHUTDOWN.
func (m *Msg) Request() bool {
	return m.State == StateSynRecv && !m.HasShutdown
}

// TCPInfo is the part of struct tcp_info (include/uapi/linux/tcp.h) that
// snapdiag records. It has the fields of bundle.TCPInfo, so one converts to
// the other.
type TCPInfo struct {
	State         uint8
	CAState       uint8
	Retransmits   uint8
	Probes        uint8
	Backoff       uint8
	Options       uint8
	SndWscale     uint8
	RcvWscale     uint8
	RTO           uint32
	ATO           uint32
	SndMSS        uint32
	RcvMSS        uint32
	Unacked       uint32
	Sacked        uint32
	Lost          uint32
	Retrans       uint32
	LastDataSent  uint32
	LastDataRecv  uint32
	LastAckRecv   uint32
	PMTU          uint32
	RcvSsthresh   uint32
	RTT           uint32
	RTTVar        uint32
	SndSsthresh   uint32
	SndCwnd       uint32
	AdvMSS        uint32
	Reordering    uint32
	RcvRTT        uint32
	RcvSpace      uint32
	TotalRetrans  uint32
	PacingRate    uint64
	BytesAcked    uint64
	BytesReceived uint64
	SegsOut       uint32
	SegsIn        uint32
	MinRTT        uint32
	DeliveryRate  uint64
	BusyTimeUS    uint64
	BytesSent     uint64
	BytesRetrans  uint64
}

var ne = binary.NativeEndian

// DecodeMsg decodes the payload of one SOCK_DIAG_BY_FAMILY reply (struct
// inet_diag_msg followed by its attributes) into m, overwriting all of m.
// Unknown attributes are skipped.
func DecodeMsg(b []byte, m *Msg) error {
	*m = Msg{}
	if len(b) < sizeofDiagMsg {
		return fmt.Errorf("inet_diag_msg: %d bytes, want %d: %w", len(b), sizeofDiagMsg, ErrTruncated)
	}
	m.Family = b[0]
	m.State = b[1]
	m.Timer = b[2]
	m.Retrans = b[3]
	id := b[4 : 4+sizeofDiagSockID]
	// struct inet_diag_sockid: ports and addresses in network byte order,
	// the rest in host order.
	sport := binary.BigEndian.Uint16(id[0:2])
	dport := binary.BigEndian.Uint16(id[2:4])
	var src, dst netip.Addr
	switch m.Family {
	case FamilyInet:
		src = netip.AddrFrom4([4]byte(id[4:8]))
		dst = netip.AddrFrom4([4]byte(id[20:24]))
	case FamilyInet6:
		src = netip.AddrFrom16([16]byte(id[4:20]))
		dst = netip.AddrFrom16([16]byte(id[20:36]))
	default:
		return fmt.Errorf("inet_diag_msg: unknown address family %d", m.Family)
	}
	m.Src = netip.AddrPortFrom(src, sport)
	m.Dst = netip.AddrPortFrom(dst, dport)
	m.IfIndex = ne.Uint32(id[36:40])
	// idiag_cookie[2]: low word first, as ss reassembles it.
	m.Cookie = uint64(ne.Uint32(id[40:44])) | uint64(ne.Uint32(id[44:48]))<<32
	rest := b[4+sizeofDiagSockID:]
	m.Expires = ne.Uint32(rest[0:4])
	m.RQueue = ne.Uint32(rest[4:8])
	m.WQueue = ne.Uint32(rest[8:12])
	m.UID = ne.Uint32(rest[12:16])
	m.Inode = ne.Uint32(rest[16:20])

	return walkAttrs(b[sizeofDiagMsg:], func(typ uint16, v []byte) error {
		switch typ {
		case attrShutdown:
			if len(v) < 1 {
				return fmt.Errorf("INET_DIAG_SHUTDOWN: %w", ErrTruncated)
			}
			m.HasShutdown = true
			m.Shutdown = v[0]
		case attrV6Only:
			if len(v) < 1 {
				return fmt.Errorf("INET_DIAG_SKV6ONLY: %w", ErrTruncated)
			}
			m.V6Only = v[0] != 0
		case attrInfo:
			m.HasInfo = true
			m.InfoLen = len(v)
			DecodeTCPInfo(v, &m.Info)
		case attrSkMemInfo:
			// sk_get_meminfo() fills SK_MEMINFO_VARS __u32 entries; older
			// kernels stop before DROPS, which is then not known (not 0).
			if off := 4 * skMemInfoDrops; len(v) >= off+4 {
				m.HasDrops = true
				m.Drops = ne.Uint32(v[off : off+4])
			}
		}
		return nil
	})
}

// walkAttrs calls fn for every struct rtattr in b. The type's top bits
// (NLA_F_NESTED, NLA_F_NET_BYTEORDER) are masked off.
func walkAttrs(b []byte, fn func(typ uint16, v []byte) error) error {
	for len(b) >= sizeofRtattr {
		l := int(ne.Uint16(b[0:2]))
		typ := ne.Uint16(b[2:4]) & 0x3fff
		if l < sizeofRtattr || l > len(b) {
			return fmt.Errorf("attribute %d: length %d of %d bytes left: %w", typ, l, len(b), ErrTruncated)
		}
		if err := fn(typ, b[sizeofRtattr:l]); err != nil {
			return err
		}
		l = align(l, rtaAlignTo)
		if l >= len(b) {
			return nil
		}
		b = b[l:]
	}
	if len(b) != 0 {
		return fmt.Errorf("attribute header: %d bytes: %w", len(b), ErrTruncated)
	}
	return nil
}

func align(n, to int) int { return (n + to - 1) &^ (to - 1) }

// DecodeTCPInfo decodes struct tcp_info by field offset into info,
// overwriting all of it. The kernel sends the struct as long as it knows it
// (tcp_diag_get_info() copies sizeof(struct tcp_info)), so older kernels send
// a shorter one: fields past the end of b are left zero, never an error.
func DecodeTCPInfo(b []byte, info *TCPInfo) {
	*info = TCPInfo{}
	u8 := func(off int) uint8 {
		if off < len(b) {
			return b[off]
		}
		return 0
	}
	u32 := func(off int) uint32 {
		if off+4 <= len(b) {
			return ne.Uint32(b[off : off+4])
		}
		return 0
	}
	u64 := func(off int) uint64 {
		if off+8 <= len(b) {
			return ne.Uint64(b[off : off+8])
		}
		return 0
	}
	info.State = u8(0)
	info.CAState = u8(1)
	info.Retransmits = u8(2)
	info.Probes = u8(3)
	info.Backoff = u8(4)
	info.Options = u8(5)
	// Byte 6 holds the bit fields tcpi_snd_wscale:4, tcpi_rcv_wscale:4. C
	// compilers allocate bit fields from the low bits on little-endian
	// machines and from the high bits on big-endian ones.
	w := u8(6)
	if littleEndian() {
		info.SndWscale, info.RcvWscale = w&0xf, w>>4
	} else {
		info.SndWscale, info.RcvWscale = w>>4, w&0xf
	}
	info.RTO = u32(8)
	info.ATO = u32(12)
	info.SndMSS = u32(16)
	info.RcvMSS = u32(20)
	info.Unacked = u32(24)
	info.Sacked = u32(28)
	info.Lost = u32(32)
	info.Retrans = u32(36)
	// 40 tcpi_fackets (unused since 4.15)
	info.LastDataSent = u32(44)
	// 48 tcpi_last_ack_sent (never set)
	info.LastDataRecv = u32(52)
	info.LastAckRecv = u32(56)
	info.PMTU = u32(60)
	info.RcvSsthresh = u32(64)
	info.RTT = u32(68)
	info.RTTVar = u32(72)
	info.SndSsthresh = u32(76)
	info.SndCwnd = u32(80)
	info.AdvMSS = u32(84)
	info.Reordering = u32(88)
	info.RcvRTT = u32(92)
	info.RcvSpace = u32(96)
	info.TotalRetrans = u32(100)
	info.PacingRate = u64(104)
	// 112 tcpi_max_pacing_rate
	info.BytesAcked = u64(120)
	info.BytesReceived = u64(128)
	info.SegsOut = u32(136)
	info.SegsIn = u32(140)
	// 144 tcpi_notsent_bytes
	info.MinRTT = u32(148)
	// 152 tcpi_data_segs_in, 156 tcpi_data_segs_out
	info.DeliveryRate = u64(160)
	info.BusyTimeUS = u64(168)
	// 176 tcpi_rwnd_limited, 184 tcpi_sndbuf_limited, 192 tcpi_delivered,
	// 196 tcpi_delivered_ce
	info.BytesSent = u64(200)
	info.BytesRetrans = u64(208)
}

func littleEndian() bool {
	return ne.Uint16([]byte{1, 0}) == 1
}

// header is the part of struct nlmsghdr that the dump reads.
type header struct {
	Len  uint32
	Type uint16
	Seq  uint32
}

// parseDatagram walks the netlink messages of one received datagram and calls
// fn with the payload of every SOCK_DIAG_BY_FAMILY or TCPDIAG_GETSOCK reply to
// seq (a reply has its request's type, and both carry struct inet_diag_msg). It returns
// done=true at NLMSG_DONE, and an error for NLMSG_ERROR with a non-zero
// error, for a malformed datagram, or from fn. Messages for other sequence
// numbers are skipped.
func parseDatagram(b []byte, seq uint32, fn func(payload []byte) error) (done bool, err error) {
	for len(b) > 0 {
		if len(b) < sizeofNlMsghdr {
			return false, fmt.Errorf("netlink header: %d bytes: %w", len(b), ErrTruncated)
		}
		h := header{
			Len:  ne.Uint32(b[0:4]),
			Type: ne.Uint16(b[4:6]),
			Seq:  ne.Uint32(b[8:12]),
		}
		if h.Len < sizeofNlMsghdr || uint64(h.Len) > uint64(len(b)) {
			return false, fmt.Errorf("netlink message length %d of %d bytes: %w", h.Len, len(b), ErrTruncated)
		}
		payload := b[sizeofNlMsghdr:h.Len]
		next := align(int(h.Len), nlmsgAlignTo)
		if next > len(b) {
			next = len(b)
		}
		b = b[next:]
		if h.Seq != seq {
			continue
		}
		switch h.Type {
		case nlmsgNoop:
		case nlmsgDone:
			// A dump that failed part-way reports the error in NLMSG_DONE's
			// payload (netlink_dump_done()).
			if len(payload) >= sizeofNlMsgerr {
				if e := int32(ne.Uint32(payload[0:4])); e < 0 {
					return true, fmt.Errorf("netlink dump: %w", syscall.Errno(-e))
				}
			}
			return true, nil
		case nlmsgError:
			if len(payload) < sizeofNlMsgerr {
				return false, fmt.Errorf("netlink error message: %w", ErrTruncated)
			}
			if e := int32(ne.Uint32(payload[0:4])); e != 0 {
				return false, fmt.Errorf("netlink request: %w", syscall.Errno(-e))
			}
			// An acknowledgement (error 0) ends a request without a dump.
			return true, nil
		case nlmsgOverrun:
			return false, errors.New("netlink overrun: messages were lost")
		case sockDiagByFamily, tcpDiagGetSock:
			if err := fn(payload); err != nil {
				return false, err
			}
		}
	}
	return false, nil
}

// appendRequest appends an inet_diag_req_v2 SOCK_DIAG_BY_FAMILY dump
// request for TCP sockets of family in states, with the ext attributes.
func appendRequest(b []byte, seq uint32, family uint8, states uint32, ext uint8) []byte {
	b = appendDumpHeader(b, sizeofDiagReqV2, sockDiagByFamily, seq)
	b = append(b, family, ipprotoTCP, ext, 0)
	b = ne.AppendUint32(b, states)
	// A zero inet_diag_sockid filters nothing: inet_diag_dump_icsk()
	// compares idiag_sport and idiag_dport only when they are non-zero.
	return append(b, make([]byte, sizeofDiagSockID)...)
}

// appendDumpHeader appends the netlink header of a dump request of type typ
// whose payload has size bytes, to the kernel.
func appendDumpHeader(b []byte, size int, typ uint16, seq uint32) []byte {
	b = ne.AppendUint32(b, uint32(sizeofNlMsghdr+size))
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, nlmFRequest|nlmFDump)
	b = ne.AppendUint32(b, seq)
	return ne.AppendUint32(b, 0) // port id 0: the kernel
}

// sizeofDiagReqCompat is the size of struct inet_diag_req, the request of
// TCPDIAG_GETSOCK.
const sizeofDiagReqCompat = 4 + sizeofDiagSockID + 8

// appendRequestBothFamilies appends a TCPDIAG_GETSOCK dump request (struct
// inet_diag_req) for TCP sockets of both families in states, with the ext
// attributes. SOCK_DIAG_BY_FAMILY cannot ask for both: sock_diag finds its
// handler by sdiag_family, and AF_UNSPEC has none. TCPDIAG_GETSOCK
// (inet_diag_rcv_msg_compat()) finds the handler by protocol and passes the
// family through, and the TCP dump (inet_diag_dump_icsk(), renamed
// tcp_diag_dump() in recent kernels) skips a socket of another family only
// when the family asked for is not AF_UNSPEC: one walk of the established
// hash instead of one per family. A reply has the request's type.
func appendRequestBothFamilies(b []byte, seq uint32, states uint32, ext uint8) []byte {
	b = appendDumpHeader(b, sizeofDiagReqCompat, tcpDiagGetSock, seq)
	b = append(b, 0, 0, 0, ext) // AF_UNSPEC, src_len, dst_len, ext
	b = append(b, make([]byte, sizeofDiagSockID)...)
	b = ne.AppendUint32(b, states)
	return ne.AppendUint32(b, 0) // idiag_dbs, unused
}
