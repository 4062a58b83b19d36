package bundle

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestListenersRoundTrip(t *testing.T) {
	if got := string(EncodeListeners(nil)); got != "[]\n" {
		t.Errorf("no listeners encode as %q, want \"[]\\n\"", got)
	}
	ls := []Listener{
		{Proto: "tcp", Family: "inet", Local: "0.0.0.0:143", Addr: "0.0.0.0", Port: 143, SendQ: 16, SynRecv: 17,
			UID: 8, Inode: 1234, Cookie: 1 << 60, ReusePort: true, PID: 99, Comm: "dovecot", Drops: ptr[uint32](1<<32 - 1)},
		{Proto: "tcp", Family: "inet6", Local: `[fe80::1%we"ird]:2`, Addr: `fe80::1%we"ird`, Port: 2, Drops: ptr[uint32](0)},
		{Proto: "tcp", Family: "inet", Local: "10.0.0.1:25", Addr: "10.0.0.1", Port: 25},
	}
	data := EncodeListeners(ls)
	back, err := DecodeListeners(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if diff := cmp.Diff(ls, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if n := strings.Count(string(data), "\n"); n != len(ls)+2 {
		t.Errorf("%d lines, want one per listener and the brackets:\n%s", n, data)
	}
	// The keys readers rely on, as the format states them.
	var raw []map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"proto", "family", "local", "port", "recv_q", "send_q", "syn_recv", "uid", "inode", "pid", "comm", "drops"} {
		if _, ok := raw[0][key]; !ok {
			t.Errorf("listeners.json has no %q", key)
		}
	}
	// A counter the kernel reported as 0 is written; one it did not report
	// is left out, so a reader tells "no drops" from "unknown".
	if v, ok := raw[1]["drops"]; !ok || v != 0.0 {
		t.Errorf("drops 0 encodes as %v (present %v), want 0", v, ok)
	}
	if v, ok := raw[2]["drops"]; ok {
		t.Errorf("unknown drops encode as %v, want no key", v)
	}
}

// TestListenersCoverRecord fails when a field is added to Listener and the
// round trip does not carry it: every field is set to a value that is not
// its zero value, and must come back.
func TestListenersCoverRecord(t *testing.T) {
	var l Listener
	v := reflect.ValueOf(&l).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x" + v.Type().Field(i).Name)
		case reflect.Int:
			f.SetInt(int64(i + 1))
		case reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Pointer:
			p := reflect.New(f.Type().Elem())
			p.Elem().SetUint(uint64(i + 1))
			f.Set(p)
		default:
			t.Fatalf("field %s of kind %v: teach this test to fill it", v.Type().Field(i).Name, f.Kind())
		}
	}
	back, err := DecodeListeners(bytes.NewReader(EncodeListeners([]Listener{l})))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Listener{l}, back); diff != "" {
		t.Errorf("round trip of a full record (-want +got):\n%s", diff)
	}
}

func ptr[T any](v T) *T { return &v }

func TestDecodeListeners(t *testing.T) {
	in := `[{"proto":"tcp","family":"inet","local":"0.0.0.0:143","addr":"0.0.0.0","port":143,"recv_q":0,"send_q":16,"syn_recv":17,"uid":0,"inode":1234,"pid":99,"comm":"dovecot"}]`
	got, err := DecodeListeners(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	// A listeners.json written before "drops" existed reads as drops
	// unknown (nil), not 0.
	want := []Listener{{Proto: "tcp", Family: "inet", Local: "0.0.0.0:143", Addr: "0.0.0.0", Port: 143, SendQ: 16,
		SynRecv: 17, Inode: 1234, PID: 99, Comm: "dovecot"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{"not":"an array"}`, ``, `[{"port":"x"}]`, `[{"recv_q":-1}]`, `[{"drops":-1}]`, `[{"drops":4294967296}]`, `[{"drops":"7"}]`} {
		if ls, err := DecodeListeners(strings.NewReader(bad)); err == nil {
			t.Errorf("DecodeListeners(%s) = %+v, want an error", bad, ls)
		}
	}
}

func FuzzDecodeListeners(f *testing.F) {
	f.Add(EncodeListeners([]Listener{{Proto: "tcp", Local: "0.0.0.0:143", Port: 143, SendQ: 16, SynRecv: 17}}))
	f.Add(EncodeListeners([]Listener{{Proto: "tcp", Local: "[::]:143", Port: 143, Drops: ptr[uint32](42)}, {Local: "0.0.0.0:25", Drops: ptr[uint32](0)}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := DecodeListeners(bytes.NewReader(b))
		if err != nil && ls != nil {
			t.Fatalf("listeners %v with error %v", ls, err)
		}
		if err != nil {
			return
		}
		// What decodes re-encodes to the same listeners, drops known or not.
		back, err := DecodeListeners(bytes.NewReader(EncodeListeners(ls)))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(ls, back, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("re-encode (-first +second):\n%s", diff)
		}
	})
}
