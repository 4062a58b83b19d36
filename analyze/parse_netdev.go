package analyze

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The /proc/net/dev columns the loader keeps, per interface:
// "Dev.eth0.rx_drop".
var (
	devRxPackets = newDevField("rx_packets")
	devRxDrop    = newDevField("rx_drop")
	devRxFifo    = newDevField("rx_fifo")
	devRxErrs    = newDevField("rx_errs")
)

// devGroup is the group of the /proc/net/dev counters.
const devGroup = "Dev"

// NetDev is the receive side of one interface's /proc/net/dev row, the part
// the rules read.
type NetDev struct {
	RxBytes   uint64
	RxPackets uint64
	RxErrs    uint64
	RxDrop    uint64 // rx_dropped + rx_missed_errors (dev_seq_printf_stats())
	RxFifo    uint64
}

// parseNetDev reads /proc/net/dev: two header lines, then "iface: 16 columns".
func parseNetDev(r io.Reader) (map[string]NetDev, error) {
	out := map[string]NetDev{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		name, rest, ok := strings.Cut(text, ":")
		if !ok || strings.Contains(name, "|") {
			continue // header lines
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if len(f) < 5 {
			return nil, fmt.Errorf("line %d: %s: %d columns, want at least 5", line, name, len(f))
		}
		var v [5]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s column %d: %w", line, name, i+1, err)
			}
			v[i] = n
		}
		out[name] = NetDev{RxBytes: v[0], RxPackets: v[1], RxErrs: v[2], RxDrop: v[3], RxFifo: v[4]}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return out, nil
}
