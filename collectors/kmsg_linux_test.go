package collectors

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLineRingKeepsTail checks the kernel log's tail against the lines it
// must be: the last ones added, as many as fit both bounds (at least one),
// each followed by a newline, however the buffer was grown and compacted
// on the way.
func TestLineRingKeepsTail(t *testing.T) {
	for _, tc := range []struct {
		maxLines, maxBytes, maxLen, n int
	}{
		{maxLines: 3, maxBytes: 1 << 20, maxLen: 10, n: 1},
		{maxLines: 2000, maxBytes: 1 << 20, maxLen: 200, n: 1500},      // all kept
		{maxLines: 2000, maxBytes: 1 << 20, maxLen: 200, n: 20_000},    // cut by lines
		{maxLines: 2000, maxBytes: 64 << 10, maxLen: 400, n: 20_000},   // cut by bytes
		{maxLines: 50, maxBytes: 1 << 20, maxLen: 3, n: 100_000},       // short lines: offsets compacted
		{maxLines: 100, maxBytes: 100 << 10, maxLen: 40 << 10, n: 300}, // lines larger than the first buffer
		{maxLines: 10, maxBytes: 100, maxLen: 300, n: 50},              // a line over the byte bound alone
	} {
		t.Run(fmt.Sprintf("%d_lines_%d_bytes_%d_added", tc.maxLines, tc.maxBytes, tc.n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.n)))
			r := newLineRing(tc.maxLines, tc.maxBytes)
			var all [][]byte
			for i := range tc.n {
				line := bytes.Repeat([]byte{byte('a' + i%26)}, rng.IntN(tc.maxLen+1))
				all = append(all, line)
				r.add(line)
			}
			kept, size := 0, 0
			for i := len(all) - 1; i >= 0; i-- {
				if kept == tc.maxLines || kept > 0 && size+len(all[i])+1 > tc.maxBytes {
					break
				}
				kept++
				size += len(all[i]) + 1
			}
			var want []byte
			for _, line := range all[len(all)-kept:] {
				want = append(append(want, line...), '\n')
			}
			if r.len() != kept {
				t.Errorf("len() = %d, want %d", r.len(), kept)
			}
			if got := r.bytes(); !bytes.Equal(got, want) { // cmp.Diff takes a second to find them equal
				t.Errorf("bytes() (-want +got):\n%s", cmp.Diff(string(want), string(got)))
			}
			// At most twice what it must hold.
			if bound := 2 * max(tc.maxBytes+tc.maxLen+1, lineRingStart); cap(r.buf) > bound {
				t.Errorf("buffer grew to %d bytes, more than %d", cap(r.buf), bound)
			}
			if bound := 5 * tc.maxLines; len(r.offs) > bound {
				t.Errorf("%d offsets held, more than %d", len(r.offs), bound)
			}
		})
	}
}
