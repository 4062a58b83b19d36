package bundle

import "testing"

func TestClientSegments(t *testing.T) {
	const flags = "tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or (ip6[6] = 6 and ip6[53] & (tcp-syn|tcp-fin|tcp-rst) != 0)"
	for _, tc := range []struct {
		name string
		info *PacketsInfo
		port uint16
		want Coverage
	}{
		{"no manifest", nil, 143, CoverageUnknown},
		{"no filter", &PacketsInfo{}, 143, CoverageUnknown},
		{"legacy default", &PacketsInfo{Filter: flags}, 143, CoverageNo},
		{"legacy focus port", &PacketsInfo{Filter: flags + " or ((tcp or udp) and port 143)"}, 143, CoverageYes},
		{"legacy other port", &PacketsInfo{Filter: flags + " or ((tcp or udp) and port 1430)"}, 143, CoverageNo},
		{"legacy several", &PacketsInfo{Filter: flags + " or ((tcp or udp) and (port 143 or port 993))"}, 993, CoverageYes},
		{"keeps focus", &PacketsInfo{Filter: "x", Keeps: &PacketKeeps{Ports: []int{143}}}, 143, CoverageYes},
		{"keeps listen", &PacketsInfo{Filter: "x", Keeps: &PacketKeeps{ListenPorts: []int{22, 8080}}}, 8080, CoverageYes},
		{"keeps neither", &PacketsInfo{Filter: "port 8080", Keeps: &PacketKeeps{ListenPorts: []int{22}}}, 8080, CoverageNo},
	} {
		if got := tc.info.ClientSegments(tc.port); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
