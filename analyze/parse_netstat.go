package analyze

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The counters of /proc/net/netstat (TcpExt), /proc/net/snmp (Tcp, Icmp)
// and /proc/net/snmp6 (Snmp6) that the rules read. Names are the kernel's
// (the snmp4_*_list and snmp6_*_list tables of net/ipv4/proc.c and
// net/ipv6/proc.c).
var (
	// Listen path (tcp_conn_request(), tcp_v4_syn_recv_sock()).
	tcpExtListenDrops          = newCounter("TcpExt", "ListenDrops")
	tcpExtListenOverflows      = newCounter("TcpExt", "ListenOverflows")
	tcpExtTCPReqQFullDrop      = newCounter("TcpExt", "TCPReqQFullDrop")
	tcpExtTCPReqQFullDoCookies = newCounter("TcpExt", "TCPReqQFullDoCookies")
	tcpExtSyncookiesSent       = newCounter("TcpExt", "SyncookiesSent")
	tcpExtSyncookiesRecv       = newCounter("TcpExt", "SyncookiesRecv")
	tcpExtSyncookiesFailed     = newCounter("TcpExt", "SyncookiesFailed")
	tcpExtTCPSynRetrans        = newCounter("TcpExt", "TCPSynRetrans")
	tcpExtEmbryonicRsts        = newCounter("TcpExt", "EmbryonicRsts")
	tcpPassiveOpens            = newCounter("Tcp", "PassiveOpens")
	tcpOutRsts                 = newCounter("Tcp", "OutRsts")

	// TIME_WAIT and memory (tcp_time_wait(), tcp_check_oom()).
	tcpExtTCPTimeWaitOverflow = newCounter("TcpExt", "TCPTimeWaitOverflow")
	tcpExtTCPAbortOnMemory    = newCounter("TcpExt", "TCPAbortOnMemory")
	tcpExtTCPMemoryPressures  = newCounter("TcpExt", "TCPMemoryPressures")

	// ICMP errors that abort waiting requests (tcp_req_err()).
	icmpOutDestUnreachs       = newCounter("Icmp", "OutDestUnreachs")
	icmpInDestUnreachs        = newCounter("Icmp", "InDestUnreachs")
	snmp6Icmp6OutDestUnreachs = newCounter(snmp6Group, "Icmp6OutDestUnreachs")
)

// TCPDeferAcceptDrop counts the data-less third ACKs a TCP_DEFER_ACCEPT
// listener discards; that listener's own sk_drops counts them too, and
// ListenDrops does not.
var tcpExtTCPDeferAcceptDrop = newCounter("TcpExt", "TCPDeferAcceptDrop")

// snmp6Group is the group of /proc/net/snmp6's counters, which the file
// does not name itself.
const snmp6Group = "Snmp6"

// Counters is a parsed counter file: group ("TcpExt", "Tcp", "Icmp", ...) to
// counter name to value.
type Counters map[string]map[string]int64

// parseNetstat reads the two-line header/value format shared by
// /proc/net/netstat and /proc/net/snmp: a line "Group: Name1 Name2 ..."
// followed by a line "Group: v1 v2 ...". Values may be negative (Tcp MaxConn
// is -1). Unknown groups are kept; a header without its value line, or a value
// line whose length differs from its header, is an error.
func parseNetstat(r io.Reader) (Counters, error) {
	out := Counters{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var (
		group string
		names []string
		line  int
	)
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		g, rest, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: no group prefix", line)
		}
		fields := strings.Fields(rest)
		if names == nil {
			group, names = g, fields
			if names == nil {
				names = []string{}
			}
			continue
		}
		if g != group {
			return nil, fmt.Errorf("line %d: group %q follows header of %q", line, g, group)
		}
		if len(fields) != len(names) {
			return nil, fmt.Errorf("line %d: %s has %d values for %d names", line, g, len(fields), len(names))
		}
		m := out[g]
		if m == nil {
			m = make(map[string]int64, len(names))
			out[g] = m
		}
		for i, f := range fields {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				// Counters are unsigned long in the kernel; values above
				// MaxInt64 wrap to keep deltas meaningful.
				u, uerr := strconv.ParseUint(f, 10, 64)
				if uerr != nil {
					return nil, fmt.Errorf("line %d: %s.%s: %w", line, g, names[i], err)
				}
				v = int64(u)
			}
			m[names[i]] = v
		}
		names = nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	if names != nil {
		return nil, fmt.Errorf("header of %s without values", group)
	}
	return out, nil
}

// parseSNMP6 reads /proc/net/snmp6: one "Name value" pair per line. Per-device
// files under /proc/net/dev_snmp6 have the same shape.
func parseSNMP6(r io.Reader) (map[string]int64, error) {
	out := map[string]int64{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want name and value, got %d fields", line, len(f))
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			u, uerr := strconv.ParseUint(f[1], 10, 64)
			if uerr != nil {
				return nil, fmt.Errorf("line %d: %s: %w", line, f[0], err)
			}
			v = int64(u)
		}
		out[f[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return out, nil
}
