package analyze

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The /proc/net/sockstat counters the rules read, grouped as
// "Sockstat.PROTO" (sockstat6 as "Sockstat6.PROTO").
var (
	sockstatTCPMem    = newCounter(sockstatGroup+".TCP", "mem")
	sockstatTCPOrphan = newCounter(sockstatGroup+".TCP", "orphan")
	sockstatTCPTW     = newCounter(sockstatGroup+".TCP", "tw")
)

// The groups of /proc/net/sockstat and sockstat6.
const (
	sockstatGroup  = "Sockstat"
	sockstat6Group = "Sockstat6"
)

// parseSockstat reads /proc/net/sockstat or sockstat6: lines
// "PROTO: key value key value ...". The result maps "TCP" to {"inuse": 1,
// "tw": 0, "mem": 3, ...}; "sockets: used N" becomes {"sockets": {"used": N}}.
func parseSockstat(r io.Reader) (Counters, error) {
	out := Counters{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		proto, rest, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: no protocol prefix", line)
		}
		f := strings.Fields(rest)
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("line %d: %s: odd number of fields", line, proto)
		}
		m := out[proto]
		if m == nil {
			m = map[string]int64{}
			out[proto] = m
		}
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s %s: %w", line, proto, f[i], err)
			}
			m[f[i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return out, nil
}
