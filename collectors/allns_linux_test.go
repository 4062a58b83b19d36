package collectors

import (
	"strconv"
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
)

func TestParseListenCounts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		netstat string
		want    listenCounts
	}{
		{"kernel order", "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPReqQFullDoCookies TCPReqQFullDrop\nTcpExt: 1 2 3 4 5\nIpExt: InNoRoutes\nIpExt: 9\n",
			listenCounts{2, 3, 5, 4}},
		{"no TcpExt", "IpExt: InNoRoutes\nIpExt: 9\n", listenCounts{}},
		{"values short", "TcpExt: ListenOverflows ListenDrops\nTcpExt: 7\n", listenCounts{7, 0, 0, 0}},
		{"not a number", "TcpExt: ListenDrops\nTcpExt: x\n", listenCounts{}},
	} {
		if got := parseListenCounts([]byte(tc.netstat)); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzParseListenCounts(f *testing.F) {
	f.Add([]byte("TcpExt: ListenOverflows ListenDrops\nTcpExt: 1 2\n"))
	f.Add([]byte("TcpExt:\nTcpExt:"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseListenCounts(data)
	})
}

// TestProblem checks what makes a namespace worth full detail, from its
// counters and its listeners, one sample after another.
func TestProblem(t *testing.T) {
	drops := func(n uint32) *uint32 { return &n }
	healthy := bundle.Listener{Local: "127.0.0.1:8080", Port: 8080, RecvQ: 0, SendQ: 16, Cookie: 1, Drops: drops(3)}
	for _, tc := range []struct {
		name       string
		netstats   []string // one per sample
		listeners  [][]bundle.Listener
		ports      []int
		single     bool
		wantReason []bool // per sample
	}{
		{"healthy", []string{counts(5), counts(5)}, [][]bundle.Listener{{healthy}, {healthy}}, nil, false, []bool{false, false}},
		{"drops counter rises", []string{counts(5), counts(6)}, [][]bundle.Listener{{healthy}, {healthy}}, nil, false, []bool{false, true}},
		{"old drops, one sample", []string{counts(5)}, [][]bundle.Listener{{healthy}}, nil, true, []bool{true}},
		{"accept queue full", []string{counts(0)}, [][]bundle.Listener{{{Local: "a", RecvQ: 9, SendQ: 8}}}, nil, false, []bool{true}},
		{"accept queue at backlog", []string{counts(0)}, [][]bundle.Listener{{{Local: "a", RecvQ: 8, SendQ: 8}}}, nil, false, []bool{false}},
		{"listener drops rise", []string{counts(0), counts(0)},
			[][]bundle.Listener{{healthy}, {{Local: "a", SendQ: 16, Cookie: 1, Drops: drops(4)}}}, nil, false, []bool{false, true}},
		{"new listener with drops", []string{counts(0), counts(0)},
			[][]bundle.Listener{{healthy}, {{Local: "a", SendQ: 16, Cookie: 2, Drops: drops(4)}}}, nil, false, []bool{false, false}},
		{"SYN queue near full", []string{counts(0)}, [][]bundle.Listener{{{Local: "a", SendQ: 16, SynRecv: 12}}}, nil, false, []bool{true}},
		{"SYN queue half", []string{counts(0)}, [][]bundle.Listener{{{Local: "a", SendQ: 16, SynRecv: 8}}}, nil, false, []bool{false}},
		{"--port", []string{counts(0)}, [][]bundle.Listener{{healthy}}, []int{8080}, false, []bool{true}},
	} {
		var n nsCapture
		for i, netstat := range tc.netstats {
			n.noteCounters([]byte(netstat), tc.single)
			n.ls = tc.listeners[i]
			if got := n.problem(tc.ports); (got != nil) != tc.wantReason[i] {
				t.Errorf("%s: sample %d: problem %+v, want one: %v", tc.name, i, got, tc.wantReason[i])
			}
		}
	}
}

// counts is a /proc/net/netstat whose ListenDrops is drops.
func counts(drops int) string {
	return "TcpExt: ListenOverflows ListenDrops TCPReqQFullDrop TCPReqQFullDoCookies\nTcpExt: 0 " + strconv.Itoa(drops) + " 0 0\n"
}
