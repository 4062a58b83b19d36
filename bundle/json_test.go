package bundle

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestAppendUint checks the codecs' integer writer against strconv at
// every digit count's bounds, after existing bytes and at a full slice
// (so it grows one), and at random values.
func TestAppendUint(t *testing.T) {
	values := []uint64{0, 1, 9, math.MaxUint32, math.MaxUint64}
	for p := uint64(10); ; p *= 10 {
		values = append(values, p-1, p, p+1)
		if p > math.MaxUint64/10 {
			break
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, r.Uint64()>>r.IntN(64))
	}
	for _, v := range values {
		want := strconv.AppendUint([]byte("x"), v, 10)
		if got := appendUint([]byte("x"), v); string(got) != string(want) {
			t.Fatalf("appendUint(%d) = %q, want %q", v, got, want)
		}
		full := []byte("abc")[:3:3]
		if got := appendUint(full, v); string(got) != "abc"+strconv.FormatUint(v, 10) {
			t.Fatalf("appendUint(%d) on a full slice = %q", v, got)
		}
		if n := decimalDigits(v); n != len(strconv.FormatUint(v, 10)) {
			t.Fatalf("decimalDigits(%d) = %d", v, n)
		}
	}
}
