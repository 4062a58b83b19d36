package analyze

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The connection-tracking counters: columns of /proc/net/stat/nf_conntrack
// summed over CPUs, and the table's size from nf_conntrack_count.
var (
	conntrackDrop         = newCounter(conntrackGroup, "drop")
	conntrackEarlyDrop    = newCounter(conntrackGroup, "early_drop")
	conntrackInsertFailed = newCounter(conntrackGroup, "insert_failed")
	conntrackCount        = newCounter(conntrackGroup, "count")
)

// conntrackGroup is the group of the connection-tracking counters.
const conntrackGroup = "Conntrack"

// parseConntrackStat reads /proc/net/stat/nf_conntrack: a header line naming
// the columns, then one row of hexadecimal values per CPU
// (ct_cpu_seq_show()). It returns the columns summed over CPUs, except
// "entries", which every row repeats and is taken once.
func parseConntrackStat(r io.Reader) (map[string]uint64, error) {
	sc := bufio.NewScanner(r)
	var names []string
	out := map[string]uint64{}
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if len(f) != len(names) {
			return nil, fmt.Errorf("line %d: %d columns for %d names", line, len(f), len(names))
		}
		for i, s := range f {
			v, err := strconv.ParseUint(s, 16, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", line, names[i], err)
			}
			if names[i] == "entries" {
				out["entries"] = v
				continue
			}
			out[names[i]] += v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	if names == nil {
		return nil, fmt.Errorf("no header line")
	}
	return out, nil
}
