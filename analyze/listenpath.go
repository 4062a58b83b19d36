package analyze

import (
	"fmt"
	"io"
	"strings"
)

// ListenPath is the host-wide listen-path counters of one reading of
// /proc/net/netstat, cumulative since boot: what a live view shows as rates
// between two readings. A counter this kernel lacks reads 0.
type ListenPath struct {
	ListenOverflows   int64
	ListenDrops       int64
	ReqQFullDrop      int64
	ReqQFullDoCookies int64
	SyncookiesSent    int64
}

// ParseListenPath reads the listen-path counters from /proc/net/netstat,
// with the parser and the counter names the rules use.
func ParseListenPath(r io.Reader) (ListenPath, error) {
	c, err := parseNetstat(r)
	if err != nil {
		return ListenPath{}, fmt.Errorf("parse netstat: %w", err)
	}
	get := func(k Counter) int64 {
		g := k.group()
		return c[g][strings.TrimPrefix(k.name, g+".")]
	}
	return ListenPath{
		ListenOverflows:   get(tcpExtListenOverflows),
		ListenDrops:       get(tcpExtListenDrops),
		ReqQFullDrop:      get(tcpExtTCPReqQFullDrop),
		ReqQFullDoCookies: get(tcpExtTCPReqQFullDoCookies),
		SyncookiesSent:    get(tcpExtSyncookiesSent),
	}, nil
}
