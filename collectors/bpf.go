package collectors

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/net/bpf"
)

// Snap lengths of the packet sample: what the filter keeps of each packet,
// counted from the network header (the socket is SOCK_DGRAM, so the link
// header is not part of the packet the filter sees).
const (
	// headerSnaplen keeps an IPv4 header with options (up to 60 bytes) and a
	// TCP header with options (up to 60 bytes), or an IPv6 header and a TCP
	// header with most options: what the analyzer reads, and no payload.
	headerSnaplen = 128
	// payloadSnaplen keeps whole packets (Host.Payload).
	payloadSnaplen = 65535
)

// maxFilterPorts bounds Host.Ports in the filter: classic BPF jumps reach at
// most 255 instructions ahead, and each port costs two comparisons.
const maxFilterPorts = 64

// maxListenPorts bounds the listening ports whose inbound segments the
// default filter keeps: one comparison each, and with maxFilterPorts the
// longest jump (from the first comparison to "accept") stays within 255.
const maxListenPorts = 96

// packetFilter is the packet sample's classic BPF program and the same
// selection in tcpdump's syntax, for the manifest.
type packetFilter struct {
	prog    []bpf.Instruction
	expr    string
	snaplen uint32
	keeps   bundle.PacketKeeps
}

// newPacketFilter builds the sample's filter: IPv4 and IPv6 TCP segments
// with SYN, FIN or RST set (every handshake and teardown on the host,
// whatever the port); every TCP segment to one of listen, the local
// listening ports (a client's final ACK and first data, which tell a
// completed handshake from a half-open one); and every TCP or UDP packet to
// or from one of ports. It accepts snaplen bytes of each packet.
//
// The program runs on a SOCK_DGRAM packet socket, so offset 0 is the network
// header and the ethertype comes from the ancillary load SKF_AD_PROTOCOL
// (skb->protocol); that works the same on Ethernet, loopback and tunnels with
// no link header. Limits, shared with tcpdump's own "port" primitive:
// non-first IPv4 fragments are rejected (they carry no TCP or UDP header), and
// IPv6 is matched only when TCP or UDP directly follows the fixed header:
// packets with extension headers (hop-by-hop, routing, fragment) are left
// out, which costs nothing for the handshakes this sample is for.
func newPacketFilter(ports, listen []int, snaplen uint32) (*packetFilter, error) {
	ps, err := filterPorts(ports, maxFilterPorts)
	if err != nil {
		return nil, err
	}
	ls, err := filterPorts(listen, maxListenPorts)
	if err != nil {
		return nil, err
	}
	f := &packetFilter{expr: filterExpr(ps, ls), snaplen: snaplen,
		keeps: bundle.PacketKeeps{Ports: nonNil(ps), ListenPorts: nonNil(ls)}}
	if f.prog, err = f.program(0, 0); err != nil {
		return nil, err
	}
	return f, nil
}

// program assembles the filter; with bits > 0 it also samples TCP flows in
// the kernel, passing a flow only when the top bits bits of its flow hash
// under key (kernelFlowHash) are zero: 1 flow in 2^bits, both directions
// of a flow alike, and the flows passed at bits+1 a subset of those passed
// at bits. UDP, packets that are not TCP, and TCP segments that the focus
// ports (ports) select but that are no SYN, FIN or RST and not to a listening
// port, are never sampled here: the flow sampler weighs them as 1.
func (f *packetFilter) program(bits, key uint32) ([]bpf.Instruction, error) {
	if bits >= 32 {
		return nil, fmt.Errorf("packet filter: flow sampling of 1 in 2^%d", bits)
	}
	ps, ls, snaplen := f.keeps.Ports, f.keeps.ListenPorts, f.snaplen
	// Where a TCP segment the filter selected goes: straight to accept,
	// or through the flow sampling first.
	tcpAccept := "accept"
	if bits > 0 {
		tcpAccept = "thin"
	}
	var a asm
	// On loopback every packet reaches the packet taps twice: once sent, by
	// dev_queue_xmit_nit() as PACKET_OUTGOING, and once received, when
	// loopback_xmit() feeds it back through __netif_rx() and
	// __netif_receive_skb_core() delivers it as PACKET_HOST. Drop the
	// outgoing copy in the kernel (libpcap's pcap-linux.c does the same for
	// "any") so each loopback packet is in the sample once, with its receive
	// time, and the copies use neither the receive buffer nor the limits.
	a.emit(bpf.LoadExtension{Num: bpf.ExtType})
	a.jumpIf(bpf.JumpEqual, bundle.PacketOutgoing, "", "proto")
	a.emit(bpf.LoadExtension{Num: bpf.ExtLinkLayerType})
	a.jumpIf(bpf.JumpEqual, bundle.ARPHRDLoopback, "reject", "proto")

	a.label("proto")
	a.emit(bpf.LoadExtension{Num: bpf.ExtProto})
	a.jumpIf(bpf.JumpEqual, bundle.EtherTypeIPv4, "ipv4", "")
	a.jumpIf(bpf.JumpEqual, bundle.EtherTypeIPv6, "ipv6", "reject")

	// IPv4: X = header length from IHL, A = protocol.
	a.label("ipv4")
	a.emit(bpf.LoadAbsolute{Off: 6, Size: 2})
	a.jumpIf(bpf.JumpBitsSet, bundle.IPv4FragMask, "reject", "")
	a.emit(bpf.LoadMemShift{Off: 0})
	a.emit(bpf.LoadAbsolute{Off: 9, Size: 1})
	a.jump("l4")

	// IPv6: X = fixed header length, A = next header.
	a.label("ipv6")
	a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: bundle.IPv6HeaderLen})
	a.emit(bpf.LoadAbsolute{Off: 6, Size: 1})

	// X is the offset of the transport header, A its protocol. What a
	// segment that is no SYN, FIN or RST goes on to: the listening ports,
	// the focus ports, or nothing.
	notFlags := "reject"
	switch {
	case len(ls) > 0:
		notFlags = "listen"
	case len(ps) > 0:
		notFlags = "ports"
	}
	a.label("l4")
	if len(ps) == 0 {
		a.jumpIf(bpf.JumpEqual, bundle.IPProtoTCP, "", "reject")
	} else {
		a.jumpIf(bpf.JumpEqual, bundle.IPProtoTCP, "", "udp")
	}
	a.emit(bpf.LoadIndirect{Off: 13, Size: 1})
	a.jumpIf(bpf.JumpBitsSet, bundle.TCPFlagSYN|bundle.TCPFlagFIN|bundle.TCPFlagRST, tcpAccept, notFlags)
	if len(ls) > 0 {
		a.label("listen")
		a.emit(bpf.LoadIndirect{Off: 2, Size: 2}) // destination port
		for _, p := range ls {
			a.jumpIf(bpf.JumpEqual, uint32(p), tcpAccept, "")
		}
		if len(ps) == 0 {
			a.jump("reject")
		} else {
			a.jump("ports")
		}
	}
	if len(ps) > 0 {
		a.label("udp")
		a.jumpIf(bpf.JumpEqual, bundle.IPProtoUDP, "", "reject")
		a.label("ports")
		for _, off := range []uint32{0, 2} { // source port, then destination port
			a.emit(bpf.LoadIndirect{Off: off, Size: 2})
			for _, p := range ps {
				a.jumpIf(bpf.JumpEqual, uint32(p), "accept", "")
			}
		}
		a.jump("reject")
	}

	a.label("accept")
	a.emit(bpf.RetConstant{Val: snaplen})
	a.label("reject")
	a.emit(bpf.RetConstant{Val: 0})
	if bits > 0 {
		// After the returns, so the jumps to them stay short.
		emitFlowThin(&a, bits, key)
		a.label("thin accept")
		a.emit(bpf.RetConstant{Val: snaplen})
		a.label("thin reject")
		a.emit(bpf.RetConstant{Val: 0})
	}
	return a.assemble()
}

// The multipliers of kernelFlowHash's finaliser (MurmurHash3's fmix32):
// with its xor-shifts, every output bit depends on every input bit, so
// addresses and ports that count up one by one still pass 1 in 2^bits.
const (
	fmixMul1 = 0x85ebca6b
	fmixMul2 = 0xc2b2ae35
)

// emitFlowThin emits the "thin" block: X is the offset of a TCP header. It
// computes kernelFlowHash and jumps to "thin accept" when its top bits bits
// are zero, else to "thin reject". Scratch words: 0 and 1 the ports, 2 the
// finaliser's, 3 the first endpoint's hash.
func emitFlowThin(a *asm, bits, key uint32) {
	// A = fmix32(A), through scratch word 2 for its xor-shifts.
	fmix := func() {
		for i, n := range []uint32{16, 13, 16} {
			a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 2})
			a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: n})
			a.emit(bpf.LoadScratch{Dst: bpf.RegX, N: 2})
			a.emit(bpf.ALUOpX{Op: bpf.ALUOpXor})
			if i < 2 {
				a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: []uint32{fmixMul1, fmixMul2}[i]})
			}
		}
	}
	// A = fmix32(A ^ the packet's word at off).
	mixWord := func(off uint32) {
		a.emit(bpf.TAX{})
		a.emit(bpf.LoadAbsolute{Off: off, Size: 4})
		a.emit(bpf.ALUOpX{Op: bpf.ALUOpXor})
		fmix()
	}
	// A = fmix32(A ^ scratch word n).
	mixScratch := func(n int) {
		a.emit(bpf.LoadScratch{Dst: bpf.RegX, N: n})
		a.emit(bpf.ALUOpX{Op: bpf.ALUOpXor})
		fmix()
	}
	a.label("thin")
	a.emit(bpf.LoadIndirect{Off: 0, Size: 2}) // source port
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.emit(bpf.LoadIndirect{Off: 2, Size: 2}) // destination port
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 1})
	a.emit(bpf.LoadExtension{Num: bpf.ExtProto})
	a.jumpIf(bpf.JumpEqual, bundle.EtherTypeIPv4, "", "thin6")
	// IPv4: the source address is the word at 12, the destination's at 16.
	for i, off := range []uint32{12, 16} {
		a.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: key})
		mixWord(off)
		mixScratch(i)
		if i == 0 {
			a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 3})
		}
	}
	a.jump("combine")
	// IPv6: the source address is the four words from 8, the
	// destination's the four from 24.
	a.label("thin6")
	for i, base := range []uint32{8, 24} {
		a.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: key})
		for off := base; off < base+16; off += 4 {
			mixWord(off)
		}
		mixScratch(i)
		if i == 0 {
			a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 3})
		}
	}
	a.label("combine")
	a.emit(bpf.LoadScratch{Dst: bpf.RegX, N: 3})
	a.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	fmix()
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 32 - bits})
	a.jumpIf(bpf.JumpEqual, 0, "thin accept", "thin reject")
}

// kernelFlowHash is the flow hash the "thin" block computes in the kernel:
// each endpoint hashed on its own, its address's 32-bit words (one for
// IPv4, four for IPv6, in network order as BPF_LD|BPF_W loads them) then
// its port, each folded in with fmix32 starting from key; the two endpoint
// hashes added (so both directions hash alike) and finalised with fmix32.
// Mixing after every word makes collisions depend on key, so a flooder who
// does not know it cannot choose sources that are all kept or all left out.
func kernelFlowHash(a, b []byte, aport, bport uint16, key uint32) uint32 {
	return fmix32(endpointHash(a, aport, key) + endpointHash(b, bport, key))
}

// endpointHash is one endpoint's part of kernelFlowHash: addr is 4 or 16
// bytes.
func endpointHash(addr []byte, port uint16, key uint32) uint32 {
	h := key
	for i := 0; i+4 <= len(addr); i += 4 {
		h = fmix32(h ^ binary.BigEndian.Uint32(addr[i:]))
	}
	return fmix32(h ^ uint32(port))
}

// fmix32 is MurmurHash3's 32-bit finaliser, as the filter computes it.
func fmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= fmixMul1
	h ^= h >> 13
	h *= fmixMul2
	h ^= h >> 16
	return h
}

// nonNil is ps, or an empty list for none, so the manifest says [] and not
// null.
func nonNil(ps []int) []int {
	if ps == nil {
		return []int{}
	}
	return ps
}

// filterPorts checks, sorts and de-duplicates a filter's ports, at most max
// of them.
func filterPorts(ports []int, max int) ([]int, error) {
	var out []int
	for _, p := range ports {
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("packet filter: invalid port %d", p)
		}
		out = append(out, p)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > max {
		return nil, fmt.Errorf("packet filter: %d ports, at most %d", len(out), max)
	}
	return out, nil
}

// filterExpr states the filter in tcpdump's syntax, so a person can re-apply
// it with tcpdump -r or Wireshark and read exactly what was selected. tcpdump's
// tcp[] is IPv4 only (libpcap 1.10), hence the explicit ip6[] term: byte 6 of
// the IPv6 header is the next header, byte 53 the TCP flags right after it.
// Its "dst port" and "port" cover both families, and, like the program,
// match neither later IPv4 fragments nor IPv6 extension headers.
func filterExpr(ports, listen []int) string {
	expr := "tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or " +
		"(ip6[6] = 6 and ip6[53] & (tcp-syn|tcp-fin|tcp-rst) != 0)"
	if len(listen) > 0 {
		expr += " or (tcp and " + portTerms("dst port ", listen) + ")"
	}
	if len(ports) > 0 {
		expr += " or ((tcp or udp) and " + portTerms("port ", ports) + ")"
	}
	return expr
}

// portTerms is "prim N" for one port, "(prim N or prim M ...)" for more.
func portTerms(prim string, ports []int) string {
	terms := make([]string, len(ports))
	for i, p := range ports {
		terms[i] = prim + strconv.Itoa(p)
	}
	sel := strings.Join(terms, " or ")
	if len(terms) > 1 {
		sel = "(" + sel + ")"
	}
	return sel
}

// raw assembles the program for SO_ATTACH_FILTER.
func (f *packetFilter) raw() ([]bpf.RawInstruction, error) { return assembleRaw(f.prog) }

// rawThinned assembles the program with flow sampling of 1 in 2^bits
// under key (program).
func (f *packetFilter) rawThinned(bits, key uint32) ([]bpf.RawInstruction, error) {
	prog, err := f.program(bits, key)
	if err != nil {
		return nil, err
	}
	return assembleRaw(prog)
}

func assembleRaw(prog []bpf.Instruction) ([]bpf.RawInstruction, error) {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assemble packet filter: %w", err)
	}
	return raw, nil
}

// asm is a small classic BPF assembler with named jump targets, so the filter
// reads as a listing and no jump offset is counted by hand.
type asm struct {
	ins    []bpf.Instruction
	labels map[string]int
	fixups []fixup
}

// fixup is a conditional or unconditional jump whose targets are labels; ""
// is the next instruction.
type fixup struct {
	at          int
	true, false string
}

func (a *asm) emit(ins bpf.Instruction) { a.ins = append(a.ins, ins) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

func (a *asm) jumpIf(cond bpf.JumpTest, val uint32, ifTrue, ifFalse string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), true: ifTrue, false: ifFalse})
	a.emit(bpf.JumpIf{Cond: cond, Val: val})
}

func (a *asm) jump(to string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), true: to})
	a.emit(bpf.Jump{})
}

// assemble resolves the labels into forward skips.
func (a *asm) assemble() ([]bpf.Instruction, error) {
	skip := func(at int, label string) (uint32, error) {
		if label == "" {
			return 0, nil
		}
		to, ok := a.labels[label]
		switch {
		case !ok:
			return 0, fmt.Errorf("packet filter: undefined label %q", label)
		case to <= at:
			return 0, fmt.Errorf("packet filter: backward jump to %q", label)
		}
		return uint32(to - at - 1), nil
	}
	out := slices.Clone(a.ins)
	for _, f := range a.fixups {
		t, err := skip(f.at, f.true)
		if err != nil {
			return nil, err
		}
		fl, err := skip(f.at, f.false)
		if err != nil {
			return nil, err
		}
		switch ins := out[f.at].(type) {
		case bpf.JumpIf:
			if t > 255 || fl > 255 {
				return nil, fmt.Errorf("packet filter: jump at %d too long", f.at)
			}
			ins.SkipTrue, ins.SkipFalse = uint8(t), uint8(fl)
			out[f.at] = ins
		case bpf.Jump:
			ins.Skip = t
			out[f.at] = ins
		}
	}
	return out, nil
}
