package sockdiag

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// encodeDiagMsg lays out struct inet_diag_msg the way the kernel's
// inet_diag_msg_common_fill() and inet_sk_diag_fill() do, followed by attrs.
func encodeDiagMsg(m Msg, attrs ...[]byte) []byte {
	b := []byte{m.Family, m.State, m.Timer, m.Retrans}
	b = binary.BigEndian.AppendUint16(b, m.Src.Port())
	b = binary.BigEndian.AppendUint16(b, m.Dst.Port())
	for _, a := range []netip.Addr{m.Src.Addr(), m.Dst.Addr()} {
		var raw [16]byte
		if a.Is4() {
			v4 := a.As4()
			copy(raw[:], v4[:])
		} else {
			raw = a.As16()
		}
		b = append(b, raw[:]...)
	}
	b = ne.AppendUint32(b, m.IfIndex)
	b = ne.AppendUint32(b, uint32(m.Cookie))
	b = ne.AppendUint32(b, uint32(m.Cookie>>32))
	for _, v := range []uint32{m.Expires, m.RQueue, m.WQueue, m.UID, m.Inode} {
		b = ne.AppendUint32(b, v)
	}
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// rtattr encodes one attribute with its padding.
func rtattr(typ uint16, v []byte) []byte {
	b := ne.AppendUint16(nil, uint16(sizeofRtattr+len(v)))
	b = ne.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%rtaAlignTo != 0 {
		b = append(b, 0)
	}
	return b
}

// nlmsg encodes one netlink message with its padding.
func nlmsg(typ uint16, seq uint32, payload []byte) []byte {
	b := ne.AppendUint32(nil, uint32(sizeofNlMsghdr+len(payload)))
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, 2) // NLM_F_MULTI
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 4242)
	b = append(b, payload...)
	for len(b)%nlmsgAlignTo != 0 {
		b = append(b, 0)
	}
	return b
}

// tcpInfoBytes is a struct tcp_info of n bytes whose every byte is its own
// offset, so a field read from the wrong offset shows.
func tcpInfoBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

var cmpAddrs = cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })

func TestDecodeMsg(t *testing.T) {
	listener := Msg{
		Family: FamilyInet, State: StateListen,
		Src: netip.MustParseAddrPort("0.0.0.0:143"), Dst: netip.MustParseAddrPort("0.0.0.0:0"),
		Cookie: 0x1122334455667788, RQueue: 5, WQueue: 4, UID: 1000, Inode: 98765,
		HasShutdown: true,
	}
	request := Msg{
		Family: FamilyInet6, State: StateSynRecv, Timer: 1, Retrans: 2,
		Src: netip.MustParseAddrPort("[::ffff:10.0.0.1]:143"), Dst: netip.MustParseAddrPort("[::ffff:10.0.0.2]:40000"),
		IfIndex: 3, Cookie: 77, Expires: 850,
	}
	info := tcpInfoBytes(104) // struct tcp_info of 2.6 kernels: up to tcpi_total_retrans
	withInfo := listener
	withInfo.HasInfo, withInfo.InfoLen = true, len(info)
	DecodeTCPInfo(info, &withInfo.Info)
	v6only := request
	v6only.State, v6only.HasShutdown, v6only.Shutdown, v6only.V6Only = StateEstablished, true, 3, true
	// SK_MEMINFO_VARS is 9 __u32 on 4.7 and later; 4.6 and older stop at
	// SK_MEMINFO_BACKLOG (8 entries), and then the drops are unknown.
	meminfo := func(n int, drops uint32) []byte {
		b := make([]byte, 4*n)
		for i := range n {
			ne.PutUint32(b[4*i:], uint32(1000+i))
		}
		if n > skMemInfoDrops {
			ne.PutUint32(b[4*skMemInfoDrops:], drops)
		}
		return b
	}
	withDrops := listener
	withDrops.HasDrops, withDrops.Drops = true, 4242

	tests := []struct {
		name    string
		in      []byte
		want    Msg
		wantErr error
	}{
		{"listener", encodeDiagMsg(listener, rtattr(attrShutdown, []byte{0})), listener, nil},
		{"request sock has no attributes", encodeDiagMsg(request), request, nil},
		{"tcp_info", encodeDiagMsg(listener, rtattr(attrShutdown, []byte{0}), rtattr(attrInfo, info)), withInfo, nil},
		{"v6only and unknown attributes", encodeDiagMsg(v6only, rtattr(99, []byte{1, 2, 3}),
			rtattr(attrShutdown, []byte{3}), rtattr(attrV6Only|0x8000, []byte{1})), v6only, nil},
		{"skmeminfo with drops", encodeDiagMsg(listener, rtattr(attrShutdown, []byte{0}), rtattr(attrSkMemInfo, meminfo(9, 4242))), withDrops, nil},
		{"skmeminfo of a newer kernel", encodeDiagMsg(listener, rtattr(attrShutdown, []byte{0}), rtattr(attrSkMemInfo, meminfo(12, 4242))), withDrops, nil},
		{"skmeminfo without drops", encodeDiagMsg(listener, rtattr(attrShutdown, []byte{0}), rtattr(attrSkMemInfo, meminfo(8, 0))), listener, nil},
		{"short", encodeDiagMsg(listener)[:sizeofDiagMsg-1], Msg{}, ErrTruncated},
		{"attribute past the end", append(encodeDiagMsg(listener), 40, 0, attrInfo, 0), Msg{}, ErrTruncated},
		{"attribute shorter than its header", append(encodeDiagMsg(listener), 2, 0, attrInfo, 0), Msg{}, ErrTruncated},
		{"trailing bytes", append(encodeDiagMsg(listener), 0, 0), Msg{}, ErrTruncated},
		{"empty shutdown", encodeDiagMsg(listener, rtattr(attrShutdown, nil)), Msg{}, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Msg
			err := DecodeMsg(tt.in, &got)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DecodeMsg error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got, cmpAddrs); diff != "" {
				t.Errorf("DecodeMsg (-want +got):\n%s", diff)
			}
		})
	}

	bad := encodeDiagMsg(listener)
	bad[0] = 1 // AF_UNIX
	if err := DecodeMsg(bad, new(Msg)); err == nil {
		t.Error("DecodeMsg accepted family 1")
	}
}

func TestRequest(t *testing.T) {
	for _, tt := range []struct {
		m    Msg
		want bool
	}{
		{Msg{State: StateSynRecv}, true},
		// A TCP Fast Open child is a full socket in SYN_RECV, already in the
		// accept queue.
		{Msg{State: StateSynRecv, HasShutdown: true}, false},
		{Msg{State: StateTimeWait}, false},
	} {
		if got := tt.m.Request(); got != tt.want {
			t.Errorf("%+v.Request() = %v, want %v", tt.m, got, tt.want)
		}
	}
}

func TestDecodeTCPInfoShort(t *testing.T) {
	full := tcpInfoBytes(248)
	var want TCPInfo
	DecodeTCPInfo(full, &want)
	if want.BytesRetrans == 0 || want.TotalRetrans == 0 || want.RTO == 0 {
		t.Fatalf("full struct decoded with zero fields: %+v", want)
	}
	// Each length an older kernel might send: fields that fit are read, the
	// rest stay zero.
	for _, n := range []int{0, 7, 104, 120, 136, 160, 200, 216} {
		var got TCPInfo
		DecodeTCPInfo(full[:n], &got)
		w := want
		zeroFrom(&w, n)
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("DecodeTCPInfo of %d bytes (-want +got):\n%s", n, diff)
		}
	}
}

// zeroFrom clears the fields of info that start at or beyond offset n of
// struct tcp_info.
func zeroFrom(info *TCPInfo, n int) {
	type field struct {
		off int
		clr func()
	}
	for _, f := range []field{
		{0, func() { info.State = 0 }}, {1, func() { info.CAState = 0 }}, {2, func() { info.Retransmits = 0 }},
		{3, func() { info.Probes = 0 }}, {4, func() { info.Backoff = 0 }}, {5, func() { info.Options = 0 }},
		{6, func() { info.SndWscale, info.RcvWscale = 0, 0 }},
		{8, func() { info.RTO = 0 }}, {12, func() { info.ATO = 0 }}, {16, func() { info.SndMSS = 0 }},
		{20, func() { info.RcvMSS = 0 }}, {24, func() { info.Unacked = 0 }}, {28, func() { info.Sacked = 0 }},
		{32, func() { info.Lost = 0 }}, {36, func() { info.Retrans = 0 }}, {44, func() { info.LastDataSent = 0 }},
		{52, func() { info.LastDataRecv = 0 }}, {56, func() { info.LastAckRecv = 0 }}, {60, func() { info.PMTU = 0 }},
		{64, func() { info.RcvSsthresh = 0 }}, {68, func() { info.RTT = 0 }}, {72, func() { info.RTTVar = 0 }},
		{76, func() { info.SndSsthresh = 0 }}, {80, func() { info.SndCwnd = 0 }}, {84, func() { info.AdvMSS = 0 }},
		{88, func() { info.Reordering = 0 }}, {92, func() { info.RcvRTT = 0 }}, {96, func() { info.RcvSpace = 0 }},
		{100, func() { info.TotalRetrans = 0 }}, {104, func() { info.PacingRate = 0 }},
		{120, func() { info.BytesAcked = 0 }}, {128, func() { info.BytesReceived = 0 }},
		{136, func() { info.SegsOut = 0 }}, {140, func() { info.SegsIn = 0 }}, {148, func() { info.MinRTT = 0 }},
		{160, func() { info.DeliveryRate = 0 }}, {168, func() { info.BusyTimeUS = 0 }},
		{200, func() { info.BytesSent = 0 }}, {208, func() { info.BytesRetrans = 0 }},
	} {
		if f.off >= n {
			f.clr()
		}
	}
}

func TestParseDatagram(t *testing.T) {
	m := encodeDiagMsg(Msg{Family: FamilyInet, State: StateEstablished,
		Src: netip.MustParseAddrPort("10.0.0.1:22"), Dst: netip.MustParseAddrPort("10.0.0.2:5000")})
	errno := func(e syscall.Errno) []byte { return ne.AppendUint32(nil, uint32(-int32(e))) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	tests := []struct {
		name     string
		in       []byte
		wantN    int
		wantDone bool
		wantErr  error
	}{
		{"two messages", cat(nlmsg(sockDiagByFamily, 1, m), nlmsg(sockDiagByFamily, 1, m)), 2, false, nil},
		{"done", cat(nlmsg(sockDiagByFamily, 1, m), nlmsg(nlmsgDone, 1, ne.AppendUint32(nil, 0))), 1, true, nil},
		{"other sequence skipped", cat(nlmsg(sockDiagByFamily, 9, m), nlmsg(nlmsgDone, 9, nil)), 0, false, nil},
		{"noop", nlmsg(nlmsgNoop, 1, nil), 0, false, nil},
		{"error", nlmsg(nlmsgError, 1, errno(syscall.ENOENT)), 0, false, syscall.ENOENT},
		{"ack", nlmsg(nlmsgError, 1, errno(0)), 0, true, nil},
		{"dump error in done", nlmsg(nlmsgDone, 1, errno(syscall.EINTR)), 0, true, syscall.EINTR},
		{"short header", nlmsg(sockDiagByFamily, 1, m)[:10], 0, false, ErrTruncated},
		{"length past the end", nlmsg(sockDiagByFamily, 1, m)[:40], 0, false, ErrTruncated},
		{"short error", nlmsg(nlmsgError, 1, []byte{1}), 0, false, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			done, err := parseDatagram(tt.in, 1, func(p []byte) error {
				n++
				if len(p) != len(m) {
					t.Errorf("payload of %d bytes, want %d", len(p), len(m))
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) || done != tt.wantDone || n != tt.wantN {
				t.Errorf("parseDatagram = %v, %v after %d messages, want %v, %v after %d",
					done, err, n, tt.wantDone, tt.wantErr, tt.wantN)
			}
		})
	}
}

func TestAppendRequest(t *testing.T) {
	b := appendRequest(nil, 7, FamilyInet6, StatesListen, ExtInfo)
	if len(b) != sizeofNlMsghdr+sizeofDiagReqV2 || int(ne.Uint32(b)) != len(b) {
		t.Fatalf("request of %d bytes with length field %d, want %d", len(b), ne.Uint32(b), sizeofNlMsghdr+sizeofDiagReqV2)
	}
	want := []byte{FamilyInet6, ipprotoTCP, ExtInfo, 0}
	if diff := cmp.Diff(want, b[16:20]); diff != "" {
		t.Errorf("inet_diag_req_v2 head (-want +got):\n%s", diff)
	}
	if ne.Uint16(b[4:]) != sockDiagByFamily || ne.Uint16(b[6:]) != nlmFRequest|nlmFDump ||
		ne.Uint32(b[8:]) != 7 || ne.Uint32(b[20:]) != StatesListen {
		t.Errorf("request header or states wrong: % x", b)
	}
}

func TestAppendRequestBothFamilies(t *testing.T) {
	b := appendRequestBothFamilies(nil, 7, StatesListen|StatesSynRecv, ExtSkMemInfo)
	if len(b) != sizeofNlMsghdr+sizeofDiagReqCompat || int(ne.Uint32(b)) != len(b) {
		t.Fatalf("request of %d bytes with length field %d, want %d", len(b), ne.Uint32(b), sizeofNlMsghdr+sizeofDiagReqCompat)
	}
	// struct inet_diag_req: family AF_UNSPEC, no address lengths, the
	// extensions, a zero socket id, then the states.
	want := []byte{0, 0, 0, ExtSkMemInfo}
	if diff := cmp.Diff(want, b[16:20]); diff != "" {
		t.Errorf("inet_diag_req head (-want +got):\n%s", diff)
	}
	if ne.Uint16(b[4:]) != tcpDiagGetSock || ne.Uint16(b[6:]) != nlmFRequest|nlmFDump ||
		ne.Uint32(b[8:]) != 7 || ne.Uint32(b[20+sizeofDiagSockID:]) != StatesListen|StatesSynRecv {
		t.Errorf("request header or states wrong: % x", b)
	}
}
