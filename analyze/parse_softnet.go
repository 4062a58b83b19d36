package analyze

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The counters the loader sums over softnet_stat's CPU rows.
var (
	softnetProcessed   = newCounter(softnetGroup, "processed")
	softnetDropped     = newCounter(softnetGroup, "dropped")
	softnetTimeSqueeze = newCounter(softnetGroup, "time_squeeze")
)

// softnetGroup is the group of the softnet_stat sums.
const softnetGroup = "Softnet"

// SoftnetCPU is one CPU's row of /proc/net/softnet_stat.
type SoftnetCPU struct {
	Processed   uint64
	Dropped     uint64 // column 2: sd->dropped, backlog over netdev_max_backlog
	TimeSqueeze uint64 // column 3: NAPI budget exhausted, not a drop
}

// parseSoftnet reads /proc/net/softnet_stat: one row of hexadecimal columns
// per CPU (softnet_seq_show() in net/core/net-procfs.c). Rows need at least
// three columns; later columns vary between kernels and are ignored.
func parseSoftnet(r io.Reader) ([]SoftnetCPU, error) {
	var out []SoftnetCPU
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("line %d: %d columns, want at least 3", line, len(f))
		}
		var v [3]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 16, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d column %d: %w", line, i+1, err)
			}
			v[i] = n
		}
		out = append(out, SoftnetCPU{Processed: v[0], Dropped: v[1], TimeSqueeze: v[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return out, nil
}
