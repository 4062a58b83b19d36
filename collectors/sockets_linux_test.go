package collectors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors/internal/sockdiag"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"golang.org/x/sys/unix"
)

// testZoner names interface 2 eth0 and interface 7 something awkward to
// escape, without asking the host.
func testZoner() *zoner {
	return &zoner{lookup: func(index int) (string, error) {
		switch index {
		case 2:
			return "eth0", nil
		case 7:
			return `we"ird\<if>`, nil
		}
		return "", net.UnknownNetworkError("no such interface")
	}}
}

// encodeSocket is the collector's path for one socket: m as a
// bundle.RawSocket, encoded by the bundle.
func encodeSocket(b []byte, m *sockdiag.Msg, z *zoner) []byte {
	raw := rawSocket(m, z)
	return bundle.AppendRawSocket(b, &raw)
}

// socketRecord is the reference for encodeSocket: the same record built the
// slow, obvious way, for encoding/json to write.
func socketRecord(m *sockdiag.Msg, z *zoner) bundle.Socket {
	addr := func(ap netip.AddrPort) string {
		zone := z.zone(ap.Addr(), m.IfIndex)
		s := netip.AddrPortFrom(ap.Addr().WithZone(zone), ap.Port()).String()
		if ap.Port() == 0 {
			s = strings.TrimSuffix(s, "0") + "*"
		}
		return s
	}
	s := bundle.Socket{
		Family: map[uint8]string{sockdiag.FamilyInet: "inet", sockdiag.FamilyInet6: "inet6"}[m.Family],
		State: map[uint8]string{1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
			6: "TIME-WAIT", 7: "CLOSE", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING", 12: "SYN-RECV"}[m.State],
		Local: addr(m.Src), Remote: addr(m.Dst),
		RecvQ: m.RQueue, SendQ: m.WQueue, UID: m.UID, Inode: m.Inode, Cookie: m.Cookie,
		Timer:     map[uint8]string{1: "on", 2: "keepalive", 3: "timewait", 4: "persist", 5: "unknown", 9: "unknown"}[m.Timer],
		ExpiresMS: m.Expires, Retrans: m.Retrans,
	}
	if s.State == "" {
		s.State = "UNKNOWN"
	}
	if m.HasInfo {
		info := bundle.TCPInfo(m.Info)
		s.Info = &info
	}
	return s
}

// fullInfo has every field set to a distinct non-zero value.
func fullInfo() sockdiag.TCPInfo {
	var info sockdiag.TCPInfo
	v := reflect.ValueOf(&info).Elem()
	for i := range v.NumField() {
		v.Field(i).SetUint(uint64(i + 1))
	}
	info.BytesAcked = 1 << 40 // beyond 32 bits
	return info
}

func socketCases() map[string]sockdiag.Msg {
	return map[string]sockdiag.Msg{
		"listener": {Family: sockdiag.FamilyInet, State: sockdiag.StateListen,
			Src: netip.MustParseAddrPort("0.0.0.0:143"), Dst: netip.MustParseAddrPort("0.0.0.0:0"),
			WQueue: 128, RQueue: 129, UID: 8, Inode: 4242, Cookie: 1 << 60, HasShutdown: true,
			HasInfo: true, InfoLen: 104, Info: sockdiag.TCPInfo{State: 10, RTO: 1000000, SndMSS: 536}},
		"established with all of tcp_info": {Family: sockdiag.FamilyInet6, State: sockdiag.StateEstablished, Timer: 2,
			Src: netip.MustParseAddrPort("[2001:db8::1]:443"), Dst: netip.MustParseAddrPort("[2001:db8::2]:50123"),
			Expires: 7199000, Inode: 99, Cookie: 7, HasShutdown: true, HasInfo: true, InfoLen: 248, Info: fullInfo()},
		"link-local with zone": {Family: sockdiag.FamilyInet6, State: sockdiag.StateEstablished, IfIndex: 2,
			Src: netip.MustParseAddrPort("[fe80::1]:22"), Dst: netip.MustParseAddrPort("[fe80::2]:40000"), Cookie: 3},
		"zone needing escapes": {Family: sockdiag.FamilyInet6, State: sockdiag.StateListen, IfIndex: 7,
			Src: netip.MustParseAddrPort("[fe80::1]:22"), Dst: netip.MustParseAddrPort("[::]:0")},
		"unknown interface": {Family: sockdiag.FamilyInet6, State: sockdiag.StateListen, IfIndex: 31,
			Src: netip.MustParseAddrPort("[fe80::1]:22"), Dst: netip.MustParseAddrPort("[::]:0")},
		"bound device, not link-local": {Family: sockdiag.FamilyInet, State: sockdiag.StateListen, IfIndex: 2,
			Src: netip.MustParseAddrPort("10.0.0.1:80"), Dst: netip.MustParseAddrPort("0.0.0.0:0")},
		"request sock": {Family: sockdiag.FamilyInet6, State: sockdiag.StateSynRecv, Timer: 1, Retrans: 3, Expires: 850,
			Src: netip.MustParseAddrPort("[::ffff:10.0.0.1]:143"), Dst: netip.MustParseAddrPort("[::ffff:10.9.9.9]:61000"), Cookie: 11},
		"time-wait": {Family: sockdiag.FamilyInet, State: sockdiag.StateTimeWait, Timer: 3, Expires: 59000,
			Src: netip.MustParseAddrPort("10.0.0.1:143"), Dst: netip.MustParseAddrPort("10.0.0.3:1"), Cookie: 12},
		"odd state and timer": {Family: sockdiag.FamilyInet, State: 42, Timer: 9,
			Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.3:65535")},
		"new syn recv": {Family: sockdiag.FamilyInet, State: sockdiag.StateNewSynRecv,
			Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.3:2")},
	}
}

func TestAppendSocketRoundTrip(t *testing.T) {
	z := testZoner()
	for name, m := range socketCases() {
		t.Run(name, func(t *testing.T) {
			line := encodeSocket(nil, &m, z)
			if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
				t.Fatalf("not one JSON line: %q", line)
			}
			var got bundle.Socket
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("decode %s: %v", line, err)
			}
			want := socketRecord(&m, z)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("encodeSocket round trip (-want +got):\n%s", diff)
			}
			// Byte for byte what encoding/json writes, omitempty included.
			std, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if string(line) != string(std)+"\n" {
				t.Errorf("encodeSocket differs from encoding/json:\n got %s\nwant %s", line, std)
			}
		})
	}
}

// TestAppendSocketCoversRecord fails when bundle.Socket or bundle.TCPInfo
// gain a field that the collector does not write.
func TestAppendSocketCoversRecord(t *testing.T) {
	m := socketCases()["established with all of tcp_info"]
	// Numbers that are 0 are left out of a row: every field is set.
	m.Retrans, m.RQueue, m.WQueue, m.UID = 1, 2, 3, 4
	var got map[string]any
	if err := json.Unmarshal(encodeSocket(nil, &m, testZoner()), &got); err != nil {
		t.Fatal(err)
	}
	check := func(typ reflect.Type, obj map[string]any) {
		for i := range typ.NumField() {
			key, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if _, ok := obj[key]; !ok {
				t.Errorf("%s.%s (%q) not written", typ.Name(), typ.Field(i).Name, key)
			}
		}
	}
	check(reflect.TypeOf(bundle.Socket{}), got)
	info, _ := got["info"].(map[string]any)
	check(reflect.TypeOf(bundle.TCPInfo{}), info)
}

func TestSocketSummary(t *testing.T) {
	var out bytes.Buffer
	tb := newSocketTable(&out, 2, testZoner())
	msgs := []sockdiag.Msg{
		{Family: sockdiag.FamilyInet, State: sockdiag.StateListen,
			Src: netip.MustParseAddrPort("0.0.0.0:143"), Dst: netip.MustParseAddrPort("0.0.0.0:0")},
		{Family: sockdiag.FamilyInet, State: sockdiag.StateEstablished,
			Src: netip.MustParseAddrPort("10.0.0.1:143"), Dst: netip.MustParseAddrPort("10.0.0.9:5000")},
		{Family: sockdiag.FamilyInet6, State: sockdiag.StateSynRecv,
			Src: netip.MustParseAddrPort("[::ffff:10.0.0.1]:143"), Dst: netip.MustParseAddrPort("[::ffff:10.0.0.9]:5001")},
		{Family: sockdiag.FamilyInet6, State: sockdiag.StateTimeWait,
			Src: netip.MustParseAddrPort("[2001:db8::1]:40000"), Dst: netip.MustParseAddrPort("[2001:db8::2]:443")},
	}
	for i := range msgs {
		if err := tb.add(&msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	want := bundle.SocketSummary{
		Total:   4,
		ByState: map[string]int{"LISTEN": 1, "ESTAB": 1, "SYN-RECV": 1, "TIME-WAIT": 1},
		ByLocalPort: map[int]map[string]int{
			143:   {"LISTEN": 1, "ESTAB": 1, "SYN-RECV": 1},
			40000: {"TIME-WAIT": 1},
		},
		// The v4-mapped peer counts as the IPv4 client it is; the
		// listener's unspecified peer is left out.
		ByRemoteAddr: map[string]map[string]int{
			"10.0.0.9":    {"ESTAB": 1, "SYN-RECV": 1},
			"2001:db8::2": {"TIME-WAIT": 1},
		},
	}
	var sum bytes.Buffer
	if err := tb.writeSummary(&sum); err != nil {
		t.Fatal(err)
	}
	var got bundle.SocketSummary
	dec := json.NewDecoder(&sum)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("summary: %v\n%s", err, sum.Bytes())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if dec.More() {
		t.Error("more than one JSON value in the summary")
	}

	var empty bytes.Buffer
	if err := newSocketTable(&out, 1, testZoner()).writeSummary(&empty); err != nil {
		t.Fatal(err)
	}
	got = bundle.SocketSummary{}
	if err := json.Unmarshal(empty.Bytes(), &got); err != nil || got.Total != 0 || got.ByState == nil || got.ByLocalPort == nil {
		t.Errorf("summary of no sockets = %+v (%v):\n%s", got, err, empty.Bytes())
	}
	if tb.total != 4 || tb.written != 2 || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("cap 2: total %d, written %d, %d lines; want 4, 2, 2", tb.total, tb.written, strings.Count(out.String(), "\n"))
	}
}

// TestSocketsCollect runs the collector against the live kernel with
// sockets of its own, once capped and once not.
func TestSocketsCollect(t *testing.T) {
	lfd, port := testutil.Listen(t, netip.MustParseAddrPort("127.0.0.1:0"), 5)
	for range 3 {
		testutil.Dial(t, "tcp4", netip.MustParseAddr("127.0.0.1"), port)
	}
	var linode uint32
	{
		var st unix.Stat_t
		if err := unix.Fstat(lfd, &st); err != nil {
			t.Fatal(err)
		}
		linode = uint32(st.Ino)
	}

	t.Run("uncapped", func(t *testing.T) {
		s := &Sockets{}
		w := bundle.NewMemWriter(0)
		if err := s.Collect(context.Background(), Host{}, w.For("sockets")); err != nil {
			t.Fatalf("Collect: %v", err)
		}
		files := w.Take()
		var rows []bundle.Socket
		err := bundle.ForEachSocket(bytes.NewReader(files[bundle.PathSocketsTCP]), func(s *bundle.Socket) error {
			r := *s
			if s.Info != nil {
				info := *s.Info
				r.Info = &info
			}
			rows = append(rows, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		info := s.Info()
		if info == nil || info.Total != len(rows) || info.Written != len(rows) || info.Truncated || info.Cap != DefaultSocketCap {
			t.Fatalf("Info() = %+v with %d rows", info, len(rows))
		}
		local := "127.0.0.1:" + strconv.Itoa(port)
		var listener *bundle.Socket
		estab := 0
		for i, r := range rows {
			switch {
			case r.State == "LISTEN" && r.Local == local:
				listener = &rows[i]
			case r.State == "ESTAB" && (r.Local == local || r.Remote == local):
				estab++
			}
		}
		if listener == nil || listener.Remote != "0.0.0.0:*" || listener.Inode != linode || listener.SendQ != 5 ||
			listener.Info == nil || listener.Info.State != 10 {
			t.Errorf("listener row = %+v, want %s -> 0.0.0.0:*, inode %d, send_q 5, with tcp_info", listener, local, linode)
		}
		if estab != 6 {
			t.Errorf("%d ESTAB rows on port %d, want 6 (3 clients, 3 unaccepted)", estab, port)
		}
		sum, err := bundle.DecodeSocketSummary(bytes.NewReader(files[bundle.PathSocketsSummary]))
		if err != nil {
			t.Fatal(err)
		}
		if sum.Total != len(rows) || sum.ByLocalPort[port]["LISTEN"] != 1 || sum.ByLocalPort[port]["ESTAB"] != 3 ||
			sum.ByRemoteAddr["127.0.0.1"]["ESTAB"] < 6 {
			t.Errorf("summary = %+v", sum)
		}
		var m bundle.Manifest
		s.Annotate(&m)
		if m.Sockets == nil || *m.Sockets != *info {
			t.Errorf("Annotate set %+v, want %+v", m.Sockets, info)
		}
	})

	t.Run("capped", func(t *testing.T) {
		s := &Sockets{}
		w := bundle.NewMemWriter(0)
		if err := s.Collect(context.Background(), Host{SocketCap: 2}, w.For("sockets")); err != nil {
			t.Fatalf("Collect: %v", err)
		}
		files := w.Take()
		info := s.Info()
		lines := bytes.Count(files[bundle.PathSocketsTCP], []byte("\n"))
		if info == nil || info.Written != 2 || lines != 2 || info.Total < 7 || !info.Truncated || info.Cap != 2 {
			t.Errorf("Info() = %+v with %d rows, want 2 written of at least 7", info, lines)
		}
		sum, err := bundle.DecodeSocketSummary(bytes.NewReader(files[bundle.PathSocketsSummary]))
		if err != nil || sum.Total != info.Total {
			t.Errorf("summary %+v (%v), want the uncapped total %d", sum, err, info.Total)
		}
		if notes := w.Notes("sockets"); len(notes) != 1 {
			t.Errorf("notes = %q, want one about the cap", notes)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		s := &Sockets{}
		w := bundle.NewMemWriter(0)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Collect(ctx, Host{}, w.For("sockets")); err == nil {
			t.Fatal("Collect with a cancelled context succeeded")
		}
		if s.Info() != nil {
			t.Errorf("Info() = %+v after a failed Collect, want nil", s.Info())
		}
		if _, ok := w.Take()[bundle.PathSocketsTCP]; ok {
			t.Error("a cut table is in the bundle")
		}
	})
}

// TestSocketTableMemory bounds what the counts cost: a SYN flood from
// 200,000 sources must not take the capture's memory with it.
func TestSocketTableMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 200,000 sockets' counts")
	}
	const n = 200_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tb := newSocketTable(discardWriter{}, n, testZoner())
	m := socketCases()["request sock"]
	for i := range n {
		m.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(i))
		m.Src = netip.AddrPortFrom(m.Src.Addr(), uint16(i))
		if err := tb.add(&m); err != nil {
			t.Fatal(err)
		}
	}
	var sum countingWriter
	if err := tb.writeSummary(&sum); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(tb)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("counts for %d peers: %d MiB", n, grew>>20)
	if grew > 48<<20 {
		t.Errorf("counting %d sockets from distinct peers holds %d MiB, want under 48", n, grew>>20)
	}
	if sum < n*20 {
		t.Errorf("summary of %d bytes for %d peers", sum, n)
	}
}

type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

func BenchmarkEncodeSocket(b *testing.B) {
	m := socketCases()["established with all of tcp_info"]
	z := testZoner()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = encodeSocket(buf[:0], &m, z)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkSocketsCollect times the whole collector against the live kernel:
// run it where there are many sockets (bench/capture.sh's namespace) for a
// number that means something.
func BenchmarkSocketsCollect(b *testing.B) {
	var n int
	for b.Loop() {
		w, err := bundle.NewWriter(b.TempDir(), 0)
		if err != nil {
			b.Fatal(err)
		}
		s := &Sockets{}
		if err := s.Collect(context.Background(), Host{}, w.For("sockets")); err != nil {
			b.Fatal(err)
		}
		n = s.Info().Total
		w.Abort()
	}
	b.ReportMetric(float64(n), "sockets")
}

// BenchmarkSocketTableAdd is the whole per-socket path after decoding:
// counting and encoding, with flushes to a discarding writer.
func BenchmarkSocketTableAdd(b *testing.B) {
	msgs := make([]sockdiag.Msg, 1024)
	for i := range msgs {
		m := socketCases()["established with all of tcp_info"]
		m.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(40000+i))
		m.Family = sockdiag.FamilyInet
		m.Src = netip.MustParseAddrPort("10.0.0.1:443")
		msgs[i] = m
	}
	tb := newSocketTable(discardWriter{}, 1<<62, testZoner())
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := tb.add(&msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestStateNames ties the kernel's state numbers, as sock_diag gives them,
// to the names the bundle writes for them.
func TestStateNames(t *testing.T) {
	want := map[uint8]string{
		sockdiag.StateEstablished: "ESTAB", sockdiag.StateSynSent: "SYN-SENT", sockdiag.StateSynRecv: "SYN-RECV",
		sockdiag.StateFinWait1: "FIN-WAIT-1", sockdiag.StateFinWait2: "FIN-WAIT-2", sockdiag.StateTimeWait: "TIME-WAIT",
		sockdiag.StateClose: "CLOSE", sockdiag.StateCloseWait: "CLOSE-WAIT", sockdiag.StateLastAck: "LAST-ACK",
		sockdiag.StateListen: "LISTEN", sockdiag.StateClosing: "CLOSING", sockdiag.StateNewSynRecv: "SYN-RECV",
		0: "UNKNOWN", 13: "UNKNOWN", 255: "UNKNOWN",
	}
	for state, name := range want {
		if got := bundle.SocketStateName(stateSlot(state)); got != name {
			t.Errorf("state %d is written %q, want %q", state, got, name)
		}
	}
}

// TestSocketTableAddDoesNotAllocate checks that a socket row costs no
// allocation once its port and peer are known: counting and encoding reuse
// the table's buffers, whatever the number of rows.
func TestSocketTableAddDoesNotAllocate(t *testing.T) {
	for name, m := range socketCases() {
		tb := newSocketTable(discardWriter{}, 1<<30, testZoner())
		if err := tb.add(&m); err != nil { // the port's and the peer's counts
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(10_000, func() {
			if err := tb.add(&m); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per row, want 0", name, allocs)
		}
	}
}

// TestSocketTableStaged encodes a table of thousands of rows, many staging
// buffers of it, into a staged bundle member, where rows are encoded in
// place (AvailableBuffer), and checks that the member holds exactly the
// rows a plain writer gets; and that a member that hits the bundle's size
// limit stops the rows, not the counting.
func TestSocketTableStaged(t *testing.T) {
	msgs := make([]sockdiag.Msg, 3000)
	for i := range msgs {
		m := socketCases()["established with all of tcp_info"]
		m.Family = sockdiag.FamilyInet
		m.Src = netip.MustParseAddrPort("10.0.0.1:443")
		m.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(40000+i))
		m.Inode = uint32(i)
		msgs[i] = m
	}
	fill := func(tb *socketTable) {
		for i := range msgs {
			if err := tb.add(&msgs[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	var plain bytes.Buffer
	pt := newSocketTable(&plain, len(msgs), testZoner())
	fill(pt)
	if err := pt.flush(); err != nil {
		t.Fatal(err)
	}

	// staged is a table writing into a staged member of a new bundle of at
	// most maxBytes (0: the default).
	staged := func(t *testing.T, maxBytes int64) (*bundle.Writer, io.WriteCloser, *socketTable) {
		w, err := bundle.NewWriter(t.TempDir(), maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		f, err := w.Create(bundle.PathSocketsTCP)
		if err != nil {
			t.Fatal(err)
		}
		return w, f, newSocketTable(f, len(msgs), testZoner())
	}

	t.Run("whole", func(t *testing.T) {
		w, f, tb := staged(t, 0)
		if tb.stage == nil {
			t.Fatalf("the table does not encode into the staged member (%T)", f)
		}
		fill(tb)
		if err := tb.flush(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		path, err := w.Commit("t.tar.zst", &bundle.Manifest{})
		if err != nil {
			t.Fatal(err)
		}
		got := testutil.ReadMember(t, path, bundle.PathSocketsTCP)
		if plain.Len() < 20*socketFlushAt || !bytes.Equal(got, plain.Bytes()) {
			t.Fatalf("staged table: %d bytes, want the plain writer's %d", len(got), plain.Len())
		}
	})

	t.Run("size limit", func(t *testing.T) {
		w, f, tb := staged(t, 256<<10)
		fill(tb)
		if err := tb.flush(); !errors.Is(err, bundle.ErrTooLarge) {
			t.Errorf("flush = %v, want %v", err, bundle.ErrTooLarge)
		}
		if tb.total != len(msgs) || tb.byState[stateSlot(sockdiag.StateEstablished)] != uint32(len(msgs)) {
			t.Errorf("counted %d sockets, %d ESTAB, want %d", tb.total, tb.byState[stateSlot(sockdiag.StateEstablished)], len(msgs))
		}
		f.Close()
		w.Abort()
	})
}

// TestSocketsCollectCutFreesTable: a socket table whose dump is cut (here
// by a context already done) is dropped at once, its staging file removed
// and its name free, rather than left open with its compressor until the
// process exits (a watch captures again and again), and is not in the
// bundle.
func TestSocketsCollectCutFreesTable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	w, err := bundle.NewWriter(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s := &Sockets{}
		// An open table would keep its name: the next Create would fail.
		if err := s.Collect(ctx, Host{}, w.For("sockets")); !errors.Is(err, context.Canceled) {
			t.Fatalf("collection %d: %v, want the context's error", i, err)
		}
		if parts, _ := filepath.Glob(filepath.Join(dir, "*", "m", "sockets", "*.part")); len(parts) > 0 {
			t.Fatalf("collection %d left staging files: %v", i, parts)
		}
	}
	path, err := w.Commit("t.tar.zst", &bundle.Manifest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.ReadMember(t, path, bundle.PathSocketsTCP); got != nil {
		t.Errorf("a cut table is in the bundle: %d bytes", len(got))
	}
}
