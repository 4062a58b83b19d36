package watch

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
)

func sampleOf(i, size int) collectors.HistorySample {
	// One file of size bytes, named so that Size() is exactly size.
	name := "n"
	return collectors.HistorySample{
		Time:  bundle.SampleTime{Index: i},
		Files: map[string][]byte{name: []byte(strings.Repeat("x", size-len(name)))},
	}
}

func indices(h *History) []int {
	var out []int
	for _, s := range h.Samples() {
		out = append(out, s.Time.Index)
	}
	return out
}

func TestHistoryBounds(t *testing.T) {
	tests := []struct {
		name       string
		maxSamples int
		maxBytes   int
		sizes      []int
		want       []int
		wantBytes  int
	}{
		{name: "under both bounds", maxSamples: 5, maxBytes: 1000, sizes: []int{10, 10, 10}, want: []int{0, 1, 2}, wantBytes: 30},
		{name: "count bound drops oldest", maxSamples: 3, maxBytes: 1000, sizes: []int{10, 10, 10, 10, 10}, want: []int{2, 3, 4}, wantBytes: 30},
		{name: "byte bound drops oldest", maxSamples: 10, maxBytes: 35, sizes: []int{10, 10, 10, 10, 10}, want: []int{2, 3, 4}, wantBytes: 30},
		{name: "big sample evicts several", maxSamples: 10, maxBytes: 50, sizes: []int{10, 10, 10, 10, 40}, want: []int{3, 4}, wantBytes: 50},
		{name: "sample over the byte bound is not kept", maxSamples: 10, maxBytes: 50, sizes: []int{10, 60, 10}, want: []int{0, 2}, wantBytes: 20},
		{name: "no history", maxSamples: 0, maxBytes: 50, sizes: []int{10, 10}, want: nil, wantBytes: 0},
		// Bytes evict early, then the ring refills past the point where it
		// wrapped and has to grow: order must hold throughout.
		{name: "wrap then grow", maxSamples: 6, maxBytes: 40, sizes: []int{10, 10, 10, 10, 30, 5, 5, 5, 5, 5, 5, 5}, want: []int{6, 7, 8, 9, 10, 11}, wantBytes: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistory(tt.maxSamples, tt.maxBytes)
			for i, size := range tt.sizes {
				h.Add(sampleOf(i, size))
				if h.Len() > max(tt.maxSamples, 0) || h.Bytes() > tt.maxBytes {
					t.Fatalf("after sample %d: %d samples, %d bytes, over the bounds", i, h.Len(), h.Bytes())
				}
			}
			if diff := cmp.Diff(tt.want, indices(h)); diff != "" {
				t.Errorf("samples (-want +got):\n%s", diff)
			}
			if h.Bytes() != tt.wantBytes {
				t.Errorf("bytes %d, want %d", h.Bytes(), tt.wantBytes)
			}
		})
	}
}

// TestHistoryLongRun adds many samples of varying sizes and checks order and
// bounds against a plain slice model.
func TestHistoryLongRun(t *testing.T) {
	const maxSamples, maxBytes = 37, 900
	h := NewHistory(maxSamples, maxBytes)
	var model []collectors.HistorySample
	for i := range 2000 {
		s := sampleOf(i, 5+(i*7919)%60)
		h.Add(s)
		model = append(model, s)
		total := 0
		for _, m := range model {
			total += m.Size()
		}
		for len(model) > maxSamples || total > maxBytes {
			total -= model[0].Size()
			model = model[1:]
		}
		if h.Len() != len(model) || h.Bytes() != total {
			t.Fatalf("after %d: %d samples %d bytes, model %d samples %d bytes", i, h.Len(), h.Bytes(), len(model), total)
		}
	}
	var want []int
	for _, m := range model {
		want = append(want, m.Time.Index)
	}
	if diff := cmp.Diff(want, indices(h)); diff != "" {
		t.Errorf("samples (-want +got):\n%s", diff)
	}
}
