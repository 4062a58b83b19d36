package bundle

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestListenersRoundTrip(t *testing.T) {
	if got := string(EncodeListeners(nil)); got != "[]\n" {
		t.Errorf("no listeners encode as %q, want \"[]\\n\"", got)
	}
	ls := []Listener{
		{Proto: "tcp", Family: "inet", Local: "0.0.0.0:143", Addr: "0.0.0.0", Port: 143, SendQ: 16, SynRecv: 17,
			UID: 8, Inode: 1234, Cookie: 1 << 60, ReusePort: true, PID: 99, Comm: "dovecot"},
		{Proto: "tcp", Family: "inet6", Local: `[fe80::1%we"ird]:2`, Addr: `fe80::1%we"ird`, Port: 2},
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
	for _, key := range []string{"proto", "family", "local", "port", "recv_q", "send_q", "syn_recv", "uid", "inode", "pid", "comm"} {
		if _, ok := raw[0][key]; !ok {
			t.Errorf("listeners.json has no %q", key)
		}
	}
}

func TestDecodeListeners(t *testing.T) {
	in := `[{"proto":"tcp","family":"inet","local":"0.0.0.0:143","addr":"0.0.0.0","port":143,"recv_q":0,"send_q":16,"syn_recv":17,"uid":0,"inode":1234,"pid":99,"comm":"dovecot"}]`
	got, err := DecodeListeners(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{{Proto: "tcp", Family: "inet", Local: "0.0.0.0:143", Addr: "0.0.0.0", Port: 143, SendQ: 16,
		SynRecv: 17, Inode: 1234, PID: 99, Comm: "dovecot"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{"not":"an array"}`, ``, `[{"port":"x"}]`, `[{"recv_q":-1}]`} {
		if ls, err := DecodeListeners(strings.NewReader(bad)); err == nil {
			t.Errorf("DecodeListeners(%s) = %+v, want an error", bad, ls)
		}
	}
}

func FuzzDecodeListeners(f *testing.F) {
	f.Add(EncodeListeners([]Listener{{Proto: "tcp", Local: "0.0.0.0:143", Port: 143, SendQ: 16, SynRecv: 17}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := DecodeListeners(bytes.NewReader(b))
		if err != nil && ls != nil {
			t.Fatalf("listeners %v with error %v", ls, err)
		}
	})
}
