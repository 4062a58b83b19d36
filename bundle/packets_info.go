package bundle

import (
	"regexp"
	"slices"
	"strconv"
)

// PacketKeeps is what a packet filter keeps beyond the TCP segments with
// SYN, FIN or RST set, which it always keeps.
type PacketKeeps struct {
	// Ports are the ports whose every TCP and UDP packet, either way, the
	// filter kept (capture --port).
	Ports []int `json:"ports"`
	// ListenPorts are the local listening ports whose inbound TCP segments
	// (the clients' ACKs and data) the filter kept, so the sample shows
	// whether a handshake on them went on. Learnt from the listeners when
	// the sample started, when no Ports were given.
	ListenPorts []int `json:"listen_ports"`
	// ListenPortsLeftOut counts the listening ports the filter had no room
	// for; their handshakes' ends are not in the sample.
	ListenPortsLeftOut int `json:"listen_ports_left_out,omitempty"`
	// FirstSegments is true when, of the segments to ListenPorts that are
	// no SYN, FIN or RST, only a client's first two after a SYN-ACK in the
	// sample were written (its final ACK and first data), not the ACK
	// streams of established connections; LeftOut counts the others.
	// TableCleared counts the times the table of awaited handshakes filled
	// (a flood) and was cleared; every segment was written for 3 s after.
	FirstSegments bool `json:"first_segments,omitempty"`
	LeftOut       int  `json:"left_out,omitempty"`
	TableCleared  int  `json:"table_cleared,omitempty"`
}

// Coverage says whether a packet sample shows what a client sent after
// its SYN on some port.
type Coverage int

const (
	// CoverageUnknown: the bundle does not say what the filter kept.
	CoverageUnknown Coverage = iota
	// CoverageNo: the filter kept only SYN, FIN and RST on the port, so a
	// handshake's final ACK and data are not in the sample.
	CoverageNo
	// CoverageYes: the filter kept the client's ACKs and data on the port.
	CoverageYes
)

// String names c for reports.
func (c Coverage) String() string {
	switch c {
	case CoverageNo:
		return "no"
	case CoverageYes:
		return "yes"
	}
	return "unknown"
}

// legacyPortTerm finds the focus ports in the filter expression that
// snapdiag wrote before PacketKeeps: "... or ((tcp or udp) and port 143)",
// or "(port 143 or port 993)" for several.
var legacyPortTerm = regexp.MustCompile(`\bport ([0-9]{1,5})\b`)

// ClientSegments says whether the sample shows a client's segments to the
// local port: its ACKs, data, FIN and RST after the SYN. Bundles without
// Keeps are read from their Filter, whose two forms (SYN, FIN and RST only,
// or those and every packet of the --port ports) are known.
func (p *PacketsInfo) ClientSegments(port uint16) Coverage {
	if p == nil {
		return CoverageUnknown
	}
	if k := p.Keeps; k != nil {
		if slices.Contains(k.Ports, int(port)) || slices.Contains(k.ListenPorts, int(port)) {
			return CoverageYes
		}
		return CoverageNo
	}
	if p.Filter == "" {
		return CoverageUnknown
	}
	for _, m := range legacyPortTerm.FindAllStringSubmatch(p.Filter, 64) {
		if n, err := strconv.Atoi(m[1]); err == nil && n == int(port) {
			return CoverageYes
		}
	}
	return CoverageNo
}
