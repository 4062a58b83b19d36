package bundle

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// summaryOf writes a summary from counts kept as the collector keeps them.
func summaryOf(t testing.TB, total int, byState StateCounts, ports map[uint16]StateCounts, remotes []netip.Addr, byRemote []StateCounts) []byte {
	t.Helper()
	var b bytes.Buffer
	portSeq := func(yield func(uint16, *StateCounts) bool) {
		for p := range 1 << 16 {
			if c, ok := ports[uint16(p)]; ok && !yield(uint16(p), &c) {
				return
			}
		}
	}
	remoteSeq := func(yield func(netip.Addr, *StateCounts) bool) {
		for i, a := range remotes {
			if !yield(a, &byRemote[i]) {
				return
			}
		}
	}
	if err := WriteSocketSummary(&b, total, &byState, portSeq, remoteSeq); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSocketSummaryRoundTrip(t *testing.T) {
	var listen, estab, synRecv StateCounts
	listen[10], estab[1], synRecv[3] = 1, 2, 3
	both := estab
	both[3] = 1
	data := summaryOf(t, 7, StateCounts{1: 2, 3: 4, 10: 1},
		map[uint16]StateCounts{143: {1: 2, 3: 4, 10: 1}, 40000: {6: 1}},
		[]netip.Addr{netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("2001:db8::2")},
		[]StateCounts{both, {6: 1}})
	want := &SocketSummary{
		Total:   7,
		ByState: map[string]int{"ESTAB": 2, "SYN-RECV": 4, "LISTEN": 1},
		ByLocalPort: map[int]map[string]int{
			143:   {"ESTAB": 2, "SYN-RECV": 4, "LISTEN": 1},
			40000: {"TIME-WAIT": 1},
		},
		ByRemoteAddr: map[string]map[string]int{
			"10.0.0.9":    {"ESTAB": 2, "SYN-RECV": 1},
			"2001:db8::2": {"TIME-WAIT": 1},
		},
	}
	got, err := DecodeSocketSummary(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// What encoding/json reads too, with nothing it does not know.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var std SocketSummary
	if err := dec.Decode(&std); err != nil || dec.More() {
		t.Errorf("encoding/json: %v (more: %v)\n%s", err, dec.More(), data)
	}
	// One port and one peer a line, for less and grep.
	if !strings.Contains(string(data), "\n  \"143\": {\"ESTAB\": 2, \"SYN-RECV\": 4, \"LISTEN\": 1},\n") {
		t.Errorf("summary layout changed:\n%s", data)
	}

	empty, err := DecodeSocketSummary(bytes.NewReader(summaryOf(t, 0, StateCounts{}, nil, nil, nil)))
	if err != nil || empty.Total != 0 || empty.ByState == nil || empty.ByLocalPort == nil || empty.ByRemoteAddr == nil {
		t.Errorf("summary of no sockets = %+v (%v)", empty, err)
	}
}

// TestSocketSummaryCoversRecord fails when SocketSummary gains a field that
// WriteSocketSummary does not write.
func TestSocketSummaryCoversRecord(t *testing.T) {
	data := summaryOf(t, 1, StateCounts{1: 1}, map[uint16]StateCounts{1: {1: 1}},
		[]netip.Addr{netip.MustParseAddr("10.0.0.1")}, []StateCounts{{1: 1}})
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range jsonKeys(reflect.TypeFor[SocketSummary]()) {
		if _, ok := got[key]; !ok {
			t.Errorf("WriteSocketSummary does not write %q", key)
		}
	}
}

func TestSocketStateName(t *testing.T) {
	var names []string
	for state := range NumSocketStates + 1 {
		names = append(names, SocketStateName(state))
	}
	want := []string{"UNKNOWN", "ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT",
		"CLOSE", "CLOSE-WAIT", "LAST-ACK", "LISTEN", "CLOSING", "UNKNOWN"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// The scanner keeps these names without allocating; a name it does
	// not know is still read.
	for _, n := range names {
		if internState([]byte(n)) != n {
			t.Errorf("internState(%q) = %q", n, internState([]byte(n)))
		}
	}
}

func TestSocketTimerName(t *testing.T) {
	var names []string
	for timer := range numSocketTimers + 2 {
		names = append(names, SocketTimerName(timer))
	}
	want := []string{"", "on", "keepalive", "timewait", "persist", "unknown", "unknown"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, n := range names[1:] {
		if internTimer([]byte(n)) != n {
			t.Errorf("internTimer(%q) = %q", n, internTimer([]byte(n)))
		}
	}
}

func FuzzDecodeSocketSummary(f *testing.F) {
	f.Add(summaryOf(f, 1, StateCounts{1: 1}, map[uint16]StateCounts{1: {1: 1}},
		[]netip.Addr{netip.MustParseAddr("10.0.0.1")}, []StateCounts{{1: 1}}))
	f.Add([]byte(`{"by_local_port":{"x":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSocketSummary(bytes.NewReader(b))
		if (err == nil) != (s != nil) {
			t.Fatalf("summary %v with error %v", s, err)
		}
	})
}
