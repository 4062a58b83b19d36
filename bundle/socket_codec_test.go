package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// fullSocket has every field of Socket and TCPInfo set to a distinct
// non-zero value, so a field a codec forgets shows.
func fullSocket() Socket {
	var s Socket
	fill := func(v reflect.Value) {
		for i := range v.NumField() {
			switch f := v.Field(i); f.Kind() {
			case reflect.String:
				f.SetString(v.Type().Field(i).Name + "-x")
			case reflect.Uint8, reflect.Uint32, reflect.Uint64:
				f.SetUint(uint64(i + 1))
			}
		}
	}
	fill(reflect.ValueOf(&s).Elem())
	info := new(TCPInfo)
	fill(reflect.ValueOf(info).Elem())
	info.BytesAcked = 1 << 40 // beyond 32 bits
	s.Info = info
	s.Cookie = 1 << 60
	return s
}

// jsonKeys are the JSON names of typ's fields.
func jsonKeys(typ reflect.Type) []string {
	var keys []string
	for i := range typ.NumField() {
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		keys = append(keys, key)
	}
	return keys
}

// TestSocketCodecCoversRecord fails when Socket or TCPInfo gain a field that
// the encoder does not write, that the fast scanner does not read, or that
// RawSocket does not carry.
func TestSocketCodecCoversRecord(t *testing.T) {
	s := fullSocket()
	var got map[string]any
	if err := json.Unmarshal(AppendSocket(nil, &s), &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range jsonKeys(reflect.TypeFor[Socket]()) {
		if _, ok := got[key]; !ok {
			t.Errorf("AppendSocket does not write Socket's %q", key)
		}
	}
	info, _ := got["info"].(map[string]any)
	for _, key := range jsonKeys(reflect.TypeFor[TCPInfo]()) {
		if _, ok := info[key]; !ok {
			t.Errorf("AppendSocket does not write TCPInfo's %q", key)
		}
	}

	std, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	var back Socket
	var scratch TCPInfo
	if !scanSocket(std, &back, &scratch) {
		t.Fatalf("the fast scanner refuses what encoding/json writes for a full record (a field it does not know?):\n%s", std)
	}
	if diff := cmp.Diff(s, back); diff != "" {
		t.Errorf("fast scanner (-want +got):\n%s", diff)
	}

	raw := reflect.TypeFor[RawSocket]()
	for i := range reflect.TypeFor[Socket]().NumField() {
		name := reflect.TypeFor[Socket]().Field(i).Name
		if _, ok := raw.FieldByName(name); !ok {
			t.Errorf("RawSocket has no field %s", name)
		}
	}
}

// socketCases are records whose lines AppendSocket must write exactly as
// encoding/json does.
func socketCases() map[string]Socket {
	full := fullSocket()
	return map[string]Socket{
		"all fields": full,
		"zero":       {},
		"listener": {Family: "inet", State: "LISTEN", Local: "0.0.0.0:143", Remote: "0.0.0.0:*", SendQ: 128,
			Info: &TCPInfo{State: 10, RTO: 1000000, SndMSS: 536}},
		"request sock": {Family: "inet6", State: "SYN-RECV", Local: "[::ffff:10.0.0.1]:143", Remote: "[::ffff:10.9.9.9]:61000",
			Timer: "on", ExpiresMS: 850, Retrans: 255, Cookie: 1<<64 - 1},
		"strings needing escapes": {Family: "inet6", State: "Ünknown\u2028", Local: `[fe80::1%we"ird\<if>&]:22`,
			Remote: "\x00\x1f\t\n\r\b\f\x7f", Timer: "bad \xff utf-8 \xed\xa0\x80"},
	}
}

func TestAppendSocketMatchesJSON(t *testing.T) {
	for name, s := range socketCases() {
		t.Run(name, func(t *testing.T) {
			std, err := json.Marshal(&s)
			if err != nil {
				t.Fatal(err)
			}
			if got := AppendSocket(nil, &s); string(got) != string(std)+"\n" {
				t.Errorf("AppendSocket differs from encoding/json:\n got %s\nwant %s", got, std)
			}
		})
	}
}

func TestAppendRawSocket(t *testing.T) {
	info := &TCPInfo{State: 1, RTT: 2000, SndCwnd: 10}
	for name, raw := range map[string]RawSocket{
		"ipv4 listener": {Family: "inet", State: "LISTEN", Local: netip.MustParseAddrPort("0.0.0.0:143"),
			Remote: netip.MustParseAddrPort("0.0.0.0:0"), SendQ: 128, UID: 8, Inode: 4242, Cookie: 1 << 60, Info: info},
		"link-local with zones": {Family: "inet6", State: "ESTAB", Local: netip.MustParseAddrPort("[fe80::1]:22"),
			Remote: netip.MustParseAddrPort("[fe80::2]:40000"), LocalZone: "eth0", RemoteZone: `we"ird\<if>`,
			Timer: "keepalive", ExpiresMS: 7199000, Retrans: 1},
		"mapped": {Family: "inet6", State: "SYN-RECV", Local: netip.MustParseAddrPort("[::ffff:10.0.0.1]:143"),
			Remote: netip.MustParseAddrPort("[::ffff:10.9.9.9]:61000"), Timer: "on"},
	} {
		t.Run(name, func(t *testing.T) {
			s := Socket{Family: raw.Family, State: raw.State,
				Local:  string(AppendAddrPort(nil, raw.Local, raw.LocalZone)),
				Remote: string(AppendAddrPort(nil, raw.Remote, raw.RemoteZone)),
				RecvQ:  raw.RecvQ, SendQ: raw.SendQ, UID: raw.UID, Inode: raw.Inode, Cookie: raw.Cookie,
				Timer: raw.Timer, ExpiresMS: raw.ExpiresMS, Retrans: raw.Retrans, Info: raw.Info}
			want := AppendSocket(nil, &s)
			if got := AppendRawSocket(nil, &raw); string(got) != string(want) {
				t.Errorf("AppendRawSocket:\n got %s\nwant %s", got, want)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() {
		raw := RawSocket{Family: "inet6", State: "ESTAB", Local: netip.MustParseAddrPort("[fe80::1]:22"),
			Remote: netip.MustParseAddrPort("[fe80::2]:40000"), LocalZone: "eth0", Info: info}
		_ = AppendRawSocket(make([]byte, 0, 2048), &raw)
	}); n > 1 {
		t.Errorf("AppendRawSocket allocates %.0f times per row, want none beyond the buffer", n)
	}
}

func TestAppendAddrPort(t *testing.T) {
	for _, c := range []struct {
		ap   string
		zone string
		want string
	}{
		{"10.0.0.1:143", "", "10.0.0.1:143"},
		{"0.0.0.0:0", "", "0.0.0.0:*"},
		{"[::]:143", "", "[::]:143"},
		{"[fe80::1]:22", "eth0", "[fe80::1%eth0]:22"},
		{"[::ffff:10.0.0.1]:143", "", "[::ffff:10.0.0.1]:143"},
	} {
		if got := string(AppendAddrPort(nil, netip.MustParseAddrPort(c.ap), c.zone)); got != c.want {
			t.Errorf("AppendAddrPort(%s, %q) = %s, want %s", c.ap, c.zone, got, c.want)
		}
	}
}

func TestSplitAddrPort(t *testing.T) {
	type split struct {
		Host string
		Port uint16
		OK   bool
	}
	for in, want := range map[string]split{
		"10.0.0.1:143":                  {"10.0.0.1", 143, true},
		"[::]:143":                      {"::", 143, true},
		"[fe80::1%eth0]:22":             {"fe80::1%eth0", 22, true},
		"[::ffff:10.0.0.1]:1":           {"::ffff:10.0.0.1", 1, true},
		"*:65535":                       {"*", 65535, true},
		"0.0.0.0:*":                     {},
		"10.0.0.1:65536":                {},
		"10.0.0.1:":                     {},
		"10.0.0.1":                      {},
		"10.0.0.1:+1":                   {},
		"10.0.0.1:99999999999999999999": {},
	} {
		h, p, ok := SplitAddrPort(in)
		if diff := cmp.Diff(want, split{h, p, ok}); diff != "" {
			t.Errorf("SplitAddrPort(%q) (-want +got):\n%s", in, diff)
		}
	}
}

// FuzzSplitAddrPort checks that SplitAddrPort reads back what
// AppendAddrPort writes.
func FuzzSplitAddrPort(f *testing.F) {
	f.Add([]byte{10, 0, 0, 1}, uint16(143), "")
	f.Add(netip.MustParseAddr("fe80::1").AsSlice(), uint16(22), "eth0")
	f.Fuzz(func(t *testing.T, ip []byte, port uint16, zone string) {
		a, ok := netip.AddrFromSlice(ip)
		if !ok || strings.ContainsAny(zone, "]") {
			_, _, _ = SplitAddrPort(string(ip) + zone)
			return
		}
		if a.Is4() {
			zone = ""
		}
		s := string(AppendAddrPort(nil, netip.AddrPortFrom(a, port), zone))
		host, p, ok := SplitAddrPort(s)
		if port == 0 {
			if ok {
				t.Fatalf("SplitAddrPort(%q) reads a port from *", s)
			}
			return
		}
		want := a.String()
		if zone != "" {
			want += "%" + zone
		}
		if !ok || p != port || host != want {
			t.Fatalf("SplitAddrPort(%q) = %q, %d, %v; want %q, %d", s, host, p, ok, want, port)
		}
	})
}

func TestDecodeSocket(t *testing.T) {
	for _, c := range []struct {
		name string
		line string
		want Socket
		fast bool // the fast scanner reads it without encoding/json
	}{
		{"collector's row", `{"family":"inet","state":"SYN-RECV","local":"10.0.0.1:143","remote":"10.0.0.2:40000","recv_q":0,"send_q":0,"uid":0,"inode":0,"cookie":9,"timer":"on","expires_ms":850,"retrans":2}` + "\n",
			Socket{Family: "inet", State: "SYN-RECV", Local: "10.0.0.1:143", Remote: "10.0.0.2:40000", Cookie: 9, Timer: "on", ExpiresMS: 850, Retrans: 2}, true},
		{"spaces and another order", " { \"info\" : { \"rtt_us\" : 1000 , \"state\":1 } , \"state\" : \"ESTAB\" }\r\n",
			Socket{State: "ESTAB", Info: &TCPInfo{RTT: 1000, State: 1}}, true},
		{"empty info", `{"state":"ESTAB","info":{}}`, Socket{State: "ESTAB", Info: &TCPInfo{}}, true},
		{"empty object", `{}`, Socket{}, true},
		{"escape", `{"state":"ESTAB","local":"10.0.0.1:4\u0030004"}`, Socket{State: "ESTAB", Local: "10.0.0.1:40004"}, false},
		{"unknown field", `{"state":"ESTAB","extra":[1,{"b":"}"}]}`, Socket{State: "ESTAB"}, false},
		{"unknown info field", `{"state":"ESTAB","info":{"a":[1,{"b":"}"}]}}`, Socket{State: "ESTAB", Info: &TCPInfo{}}, false},
		{"key in capitals", `{"STATE":"ESTAB"}`, Socket{State: "ESTAB"}, false},
		{"null", `{"state":null,"info":null}`, Socket{}, false},
		{"key given twice", `{"state":"ESTAB","state":"LISTEN"}`, Socket{State: "LISTEN"}, false},
		{"non-ASCII", `{"local":"[fe80::1%é]:1"}`, Socket{Local: "[fe80::1%é]:1"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got Socket
			if err := DecodeSocket([]byte(c.line), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			var scratch TCPInfo
			if fast := scanSocket([]byte(c.line), &got, &scratch); fast != c.fast {
				t.Errorf("fast scanner took it: %v, want %v", fast, c.fast)
			}
		})
	}
	for _, line := range []string{
		`not json`, `{"state":"ESTAB"`, `{"retrans":256}`, `{"recv_q":-1}`, `{"recv_q":1.5}`, `{"state":1}`,
		`{"state":"ESTAB"} trailing`, `[]`, `{"info":{"state":1e3}}`, `{"cookie":18446744073709551616}`,
	} {
		var s Socket
		if err := DecodeSocket([]byte(line), &s); err == nil {
			t.Errorf("DecodeSocket(%s) = %+v, want an error", line, s)
		}
	}
}

// TestZeroFieldsOmitted: the rows written before zero fields were omitted
// and the rows written now read as the same socket, both by the fast
// scanner, and the new row leaves out every number that is 0.
func TestZeroFieldsOmitted(t *testing.T) {
	// An idle loopback connection as snapdiag wrote it before (recorded on
	// kernel 6.18 with bench/sockhold).
	const old = `{"family":"inet","state":"ESTAB","local":"127.0.0.1:33020","remote":"127.0.0.1:18789","recv_q":0,"send_q":0,"uid":0,"inode":8054655,"cookie":2074807,` +
		`"info":{"state":1,"ca_state":0,"retransmits":0,"probes":0,"backoff":0,"options":7,"snd_wscale":10,"rcv_wscale":10,"rto_us":204000,"ato_us":0,"snd_mss":32741,"rcv_mss":536,` +
		`"unacked":0,"sacked":0,"lost":0,"retrans":0,"last_data_sent_ms":307244,"last_data_recv_ms":307244,"last_ack_recv_ms":307244,"pmtu":65535,"rcv_ssthresh":65495,` +
		`"rtt_us":6,"rttvar_us":3,"snd_ssthresh":2147483647,"snd_cwnd":10,"advmss":65483,"reordering":3,"rcv_rtt_us":0,"rcv_space":65495,"total_retrans":0,` +
		`"pacing_rate":155948192961,"bytes_acked":1,"segs_out":2,"segs_in":1,"min_rtt_us":6}}` + "\n"
	want := fastScan(t, []byte(old))
	row := AppendSocket(nil, &want)
	if len(row) >= len(old)*4/5 {
		t.Errorf("the new row is %d bytes, the old one %d: want at least a fifth less", len(row), len(old))
	}
	if diff := cmp.Diff(want, fastScan(t, row)); diff != "" {
		t.Errorf("old and new rows read differently (-old +new):\n%s", diff)
	}
	var keys map[string]any
	if err := json.Unmarshal(row, &keys); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []map[string]any{keys, keys["info"].(map[string]any)} {
		for k, v := range obj {
			if v == float64(0) {
				t.Errorf("the new row writes %s = 0", k)
			}
		}
	}
}

// fastScan reads row by the fast scanner, which must take it.
func fastScan(t *testing.T, row []byte) Socket {
	t.Helper()
	var s Socket
	if !scanSocket(row, &s, new(TCPInfo)) {
		t.Fatalf("the fast scanner refuses %s", row)
	}
	return s
}

func TestSocketReader(t *testing.T) {
	rows := []string{
		`{"state":"LISTEN","local":"0.0.0.0:143","remote":"0.0.0.0:*","send_q":16}`,
		``,
		`not json`,
		`{"state":"ESTAB","info":{"rtt_us":5}}`,
		`{"state":"` + strings.Repeat("x", MaxSocketLine) + `"}`,
		`{"state":"TIME-WAIT"}`, // no final newline
	}
	type result struct {
		State string
		RTT   uint32
		Line  int // of a RowError
	}
	var got []result
	sr := NewSocketReader(strings.NewReader(strings.Join(rows, "\n")))
	for {
		s, err := sr.Next()
		if err == io.EOF {
			break
		}
		var re *RowError
		switch {
		case errors.As(err, &re):
			if !errors.Is(err, ErrMalformedRow) || !errors.Is(err, ErrCorrupt) {
				t.Errorf("%v is not an ErrMalformedRow and an ErrCorrupt", err)
			}
			got = append(got, result{Line: re.Line})
		case err != nil:
			t.Fatal(err)
		default:
			r := result{State: s.State}
			if s.Info != nil {
				r.RTT = s.Info.RTT
			}
			got = append(got, r)
		}
	}
	want := []result{{State: "LISTEN"}, {Line: 3}, {State: "ESTAB", RTT: 5}, {Line: 5}, {State: "TIME-WAIT"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}

	// ForEach goes on past them, and counts them.
	var states []string
	malformed, err := NewSocketReader(strings.NewReader(strings.Join(rows, "\n"))).ForEach(func(s *Socket) error {
		states = append(states, s.State)
		return nil
	})
	if err != nil || malformed != 2 || !slices.Equal(states, []string{"LISTEN", "ESTAB", "TIME-WAIT"}) {
		t.Errorf("ForEach = %d malformed, rows %q, %v; want 2, LISTEN ESTAB TIME-WAIT", malformed, states, err)
	}

	// ForEachSocket stops at the damaged row and says where it is.
	n := 0
	err = ForEachSocket(strings.NewReader(strings.Join(rows, "\n")), func(*Socket) error { n++; return nil })
	var re *RowError
	if !errors.As(err, &re) || re.Line != 3 || re.Path != PathSocketsTCP || n != 1 {
		t.Errorf("ForEachSocket = %v after %d rows, want a RowError at line 3 after 1", err, n)
	}
	// The callback's error ends the walk as it is.
	stop := errors.New("stop")
	if err := ForEachSocket(strings.NewReader(rows[0]), func(*Socket) error { return stop }); err != stop {
		t.Errorf("ForEachSocket = %v, want the callback's error", err)
	}
	// A read error is the input's, not a row's.
	err = ForEachSocket(iotest.TimeoutReader(strings.NewReader(rows[0]+"\n"+rows[3]+"\n")), func(*Socket) error { return nil })
	if !errors.Is(err, iotest.ErrTimeout) || errors.As(err, &re) {
		t.Errorf("ForEachSocket on a failing reader = %v, want its error", err)
	}
}

// TestSocketReaderReuses checks that streaming a table costs the row's
// strings only: the Socket and its TCPInfo are the reader's.
func TestSocketReaderReuses(t *testing.T) {
	s := fullSocket()
	line := AppendSocket(nil, &s)
	data := bytes.Repeat(line, 100)
	r := bytes.NewReader(data)
	sr := NewSocketReader(r)
	allocs := testing.AllocsPerRun(10, func() {
		r.Reset(data)
		sr.br.Reset(r)
		sr.err = nil
		for {
			if _, err := sr.Next(); err != nil {
				break
			}
		}
	})
	// Local, Remote, Family, State and Timer are not known names here: five
	// strings a row.
	if per := allocs / 100; per > 5 {
		t.Errorf("%.1f allocations per row, want at most 5", per)
	}
}

// FuzzDecodeSocket checks the fast scanner against encoding/json: whatever
// it accepts, encoding/json accepts and reads the same, and DecodeSocket
// fails exactly when encoding/json fails.
func FuzzDecodeSocket(f *testing.F) {
	for _, s := range socketCases() {
		f.Add(AppendSocket(nil, &s))
	}
	f.Add([]byte(`{"family":"inet","state":"ESTAB","local":"10.0.0.1:22","remote":"10.0.0.9:50000","retrans":3,"info":{"x":[1,2,{"y":"z"}]}}`))
	f.Add([]byte(` { "state" : "TIME-WAIT" , "local" : "[::1]:1" , "remote":"[::1]:2", "info": {"rtt_us": 7} } `))
	f.Fuzz(func(t *testing.T, b []byte) {
		var std Socket
		stdErr := json.Unmarshal(b, &std)
		var fast Socket
		var scratch TCPInfo
		if scanSocket(b, &fast, &scratch) {
			if stdErr != nil {
				t.Fatalf("fast scanner accepts what encoding/json refuses (%v): %q", stdErr, b)
			}
			if diff := cmp.Diff(std, fast); diff != "" {
				t.Fatalf("%q: (-json +scanner):\n%s", b, diff)
			}
		}
		var got Socket
		if err := DecodeSocket(b, &got); (err == nil) != (stdErr == nil) {
			t.Fatalf("DecodeSocket error %v, encoding/json %v: %q", err, stdErr, b)
		}
		// Without tcp_info (SocketReader.SkipInfo): whatever the full scanner
		// takes, the skipping one takes, and reads the same but for Info.
		var skipped Socket
		skipOK := scanSocket(b, &skipped, nil)
		if scanSocket(b, &fast, &scratch) && !skipOK {
			t.Fatalf("the scanner skipping tcp_info refuses what the full one takes: %q", b)
		}
		if skipOK && stdErr == nil {
			std.Info = nil
			if diff := cmp.Diff(std, skipped); diff != "" {
				t.Fatalf("%q: (-json without info +skipping scanner):\n%s", b, diff)
			}
		}
	})
}

// FuzzSocketReader streams arbitrary bytes: no panic, and every line is a
// row, a RowError or blank.
func FuzzSocketReader(f *testing.F) {
	s := fullSocket()
	f.Add(append(AppendSocket(nil, &s), "\n\nnot json\n{}"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		sr := NewSocketReader(bytes.NewReader(b))
		lines := bytes.Count(b, []byte{'\n'}) + 1
		for n := 0; ; n++ {
			_, err := sr.Next()
			if err == io.EOF {
				return
			}
			var re *RowError
			if err != nil && !errors.As(err, &re) {
				t.Fatalf("Next: %v", err)
			}
			if n > lines {
				t.Fatalf("more results than the %d lines", lines)
			}
		}
	})
}

// FuzzAppendSocket checks the encoder against encoding/json for any strings.
func FuzzAppendSocket(f *testing.F) {
	f.Add("inet6", "ESTAB", `[fe80::1%we"ird\<if>]:22`, "\u2028\xff", uint32(7), uint8(3))
	f.Fuzz(func(t *testing.T, family, state, local, timer string, n uint32, retrans uint8) {
		s := Socket{Family: family, State: state, Local: local, Remote: local, RecvQ: n, Timer: timer,
			ExpiresMS: n, Retrans: retrans, Info: &TCPInfo{RTT: n}}
		std, err := json.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendSocket(nil, &s); string(got) != string(std)+"\n" {
			t.Fatalf("AppendSocket differs from encoding/json:\n got %q\nwant %q", got, std)
		}
	})
}

func BenchmarkAppendRawSocket(b *testing.B) {
	info := fullSocket().Info
	raw := RawSocket{Family: "inet6", State: "ESTAB", Local: netip.MustParseAddrPort("[2001:db8::1]:443"),
		Remote: netip.MustParseAddrPort("[2001:db8::2]:50123"), Timer: "keepalive", ExpiresMS: 7199000,
		Inode: 99, Cookie: 7, Info: info}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRawSocket(buf[:0], &raw)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkSocketReader(b *testing.B) {
	s := fullSocket()
	s.Family, s.State, s.Timer, s.Local, s.Remote = "inet", "ESTAB", "keepalive", "10.0.0.1:443", "10.1.2.3:50000"
	data := bytes.Repeat(AppendSocket(nil, &s), 10_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ForEachSocket(bytes.NewReader(data), func(*Socket) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSocketReaderSkipInfo: the same rows, in the same order, without
// their tcp_info; rows without one are unchanged.
func TestSocketReaderSkipInfo(t *testing.T) {
	var table []byte
	var want []Socket
	for _, s := range socketCases() {
		line := AppendSocket(nil, &s)
		table = append(table, line...)
		// As the full decoder reads it (invalid UTF-8 becomes U+FFFD).
		if err := DecodeSocket(line, &s); err != nil {
			t.Fatal(err)
		}
		s.Info = nil
		want = append(want, s)
	}
	var got []Socket
	n, err := NewSocketReader(bytes.NewReader(table)).SkipInfo().ForEach(func(s *Socket) error {
		got = append(got, *s)
		return nil
	})
	if err != nil || n != 0 {
		t.Fatalf("ForEach = %d malformed, %v", n, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows without tcp_info (-want +got):\n%s", diff)
	}
}
