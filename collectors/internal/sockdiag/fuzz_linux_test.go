package sockdiag

import (
	"bytes"
	"context"
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"golang.org/x/sys/unix"
)

// liveSeeds records what the running kernel sends for a listener, a request
// socket, established and TIME_WAIT sockets, in both families: whole
// datagrams, the inet_diag_msg payloads, and the INET_DIAG_INFO attributes.
func liveSeeds(f *testing.F) (datagrams, msgs, infos [][]byte) {
	f.Helper()
	for _, lo := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")} {
		if !testutil.CanListen(lo) {
			continue
		}
		network := "tcp4"
		if lo.Is6() {
			network = "tcp6"
		}
		fd, port := testutil.Listen(f, netip.AddrPortFrom(lo, 0), 4)
		// An accepted connection closed by the client first leaves the
		// client's side in TIME_WAIT (or FIN_WAIT2 for a moment).
		tw := testutil.Dial(f, network, lo, port)
		if nfd, _, err := unix.Accept(fd); err == nil {
			tw.Close()
			unix.Close(nfd)
		}
		testutil.Dial(f, network, lo, port)
		_, dport := testutil.Listen(f, netip.AddrPortFrom(lo, 0), 4, testutil.DeferAccept(60))
		testutil.Dial(f, network, lo, dport) // stays a request socket
	}
	for _, family := range []uint8{FamilyInet, FamilyInet6} {
		err := dumpRaw(context.Background(), family, StatesAll, ExtInfo|ExtSkMemInfo, func(d []byte) (bool, error) {
			datagrams = append(datagrams, bytes.Clone(d))
			return parseDatagram(d, dumpSeq, func(p []byte) error {
				msgs = append(msgs, bytes.Clone(p))
				if len(p) > sizeofDiagMsg {
					walkAttrs(p[sizeofDiagMsg:], func(typ uint16, v []byte) error {
						if typ == attrInfo {
							infos = append(infos, bytes.Clone(v))
						}
						return nil
					})
				}
				return nil
			})
		})
		if err != nil {
			f.Logf("no live seeds for family %d: %v", family, err)
		}
	}
	// Keep the corpus small: a few of each kind is enough to start from.
	return first(datagrams, 4), first(msgs, 32), first(infos, 8)
}

func first(b [][]byte, n int) [][]byte { return b[:min(n, len(b))] }

func FuzzDecodeMsg(f *testing.F) {
	_, msgs, _ := liveSeeds(f)
	for _, m := range msgs {
		f.Add(m)
	}
	f.Add(encodeDiagMsg(Msg{Family: FamilyInet, State: StateListen,
		Src: netip.MustParseAddrPort("0.0.0.0:80"), Dst: netip.MustParseAddrPort("0.0.0.0:0")},
		rtattr(attrShutdown, []byte{0}), rtattr(attrInfo, tcpInfoBytes(232)), rtattr(attrSkMemInfo, make([]byte, 36))))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Msg
		if err := DecodeMsg(b, &m); err != nil {
			return
		}
		if len(b) < sizeofDiagMsg {
			t.Fatalf("decoded %d bytes, shorter than inet_diag_msg", len(b))
		}
		if m.Family != b[0] || m.Src.Addr().Is4() != (m.Family == FamilyInet) || m.Dst.Addr().Is4() != (m.Family == FamilyInet) {
			t.Fatalf("family %d with addresses %v %v", m.Family, m.Src, m.Dst)
		}
		if m.InfoLen > len(b)-sizeofDiagMsg || m.InfoLen > 0 && !m.HasInfo {
			t.Fatalf("tcp_info of %d bytes in a message of %d", m.InfoLen, len(b))
		}
		var again Msg
		if err := DecodeMsg(b, &again); err != nil || !cmp.Equal(m, again, cmpAddrs) {
			t.Fatalf("second decode differs: %v", err)
		}
	})
}

func FuzzDecodeTCPInfo(f *testing.F) {
	_, _, infos := liveSeeds(f)
	for _, b := range infos {
		f.Add(b)
	}
	f.Add(tcpInfoBytes(104))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, padded TCPInfo
		DecodeTCPInfo(b, &got)
		// A shorter struct from an older kernel reads as the longer one with
		// its missing fields zero. Every struct tcp_info the kernel ever
		// sent is a multiple of 8 bytes long (it holds __u64 fields), so no
		// field is cut in two; other lengths only must not panic.
		if len(b)%8 != 0 {
			return
		}
		DecodeTCPInfo(append(bytes.Clone(b), make([]byte, 256)...), &padded)
		if got != padded {
			t.Fatalf("decode of %d bytes %+v differs from the zero-padded decode %+v", len(b), got, padded)
		}
	})
}

func FuzzParseDatagram(f *testing.F) {
	datagrams, _, _ := liveSeeds(f)
	for _, d := range datagrams {
		f.Add(d, uint32(dumpSeq))
	}
	f.Add(nlmsg(nlmsgDone, 1, []byte{0, 0, 0, 0}), uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, seq uint32) {
		n := 0
		parseDatagram(b, seq, func(p []byte) error {
			n++
			if len(p) > len(b)-sizeofNlMsghdr {
				t.Fatalf("payload of %d bytes from a datagram of %d", len(p), len(b))
			}
			return DecodeMsg(p, new(Msg))
		})
		if n > len(b)/sizeofNlMsghdr {
			t.Fatalf("%d messages from %d bytes", n, len(b))
		}
	})
}

// TestTCPInfoOffsets checks the decoder's offsets against the layout of
// struct tcp_info that x/sys/unix generated from the kernel headers.
func TestTCPInfoOffsets(t *testing.T) {
	typ := reflect.TypeOf(unix.TCPInfo{})
	b := make([]byte, typ.Size())
	var want TCPInfo
	wantV := reflect.ValueOf(&want).Elem()
	// x/sys names -> ours.
	names := map[string]string{
		"State": "State", "Ca_state": "CAState", "Retransmits": "Retransmits", "Probes": "Probes",
		"Backoff": "Backoff", "Options": "Options", "Rto": "RTO", "Ato": "ATO", "Snd_mss": "SndMSS",
		"Rcv_mss": "RcvMSS", "Unacked": "Unacked", "Sacked": "Sacked", "Lost": "Lost", "Retrans": "Retrans",
		"Last_data_sent": "LastDataSent", "Last_data_recv": "LastDataRecv", "Last_ack_recv": "LastAckRecv",
		"Pmtu": "PMTU", "Rcv_ssthresh": "RcvSsthresh", "Rtt": "RTT", "Rttvar": "RTTVar",
		"Snd_ssthresh": "SndSsthresh", "Snd_cwnd": "SndCwnd", "Advmss": "AdvMSS", "Reordering": "Reordering",
		"Rcv_rtt": "RcvRTT", "Rcv_space": "RcvSpace", "Total_retrans": "TotalRetrans",
		"Pacing_rate": "PacingRate", "Bytes_acked": "BytesAcked", "Bytes_received": "BytesReceived",
		"Segs_out": "SegsOut", "Segs_in": "SegsIn", "Min_rtt": "MinRTT", "Delivery_rate": "DeliveryRate",
		"Busy_time": "BusyTimeUS", "Bytes_sent": "BytesSent", "Bytes_retrans": "BytesRetrans",
	}
	mapped := 0
	for i := range typ.NumField() {
		sf := typ.Field(i)
		v := uint64(i + 1) // distinct per field
		switch sf.Type.Size() {
		case 1:
			b[sf.Offset] = byte(v)
		case 2:
			ne.PutUint16(b[sf.Offset:], uint16(v))
		case 4:
			ne.PutUint32(b[sf.Offset:], uint32(v))
		case 8:
			ne.PutUint64(b[sf.Offset:], v)
		}
		if ours, ok := names[sf.Name]; ok {
			wantV.FieldByName(ours).SetUint(v)
			mapped++
		}
	}
	if mapped != len(names) {
		t.Fatalf("x/sys/unix.TCPInfo has %d of the %d mapped fields", mapped, len(names))
	}
	if n := reflect.TypeOf(TCPInfo{}).NumField(); n != len(names)+2 {
		t.Fatalf("TCPInfo has %d fields, the test maps %d (+2 wscale): map the new ones", n, len(names))
	}
	var got TCPInfo
	DecodeTCPInfo(b, &got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeTCPInfo against x/sys/unix.TCPInfo offsets (-want +got):\n%s", diff)
	}
}
