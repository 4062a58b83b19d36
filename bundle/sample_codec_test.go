package bundle

import (
	"bytes"
	"strings"
	"testing"
)

func TestSampleTimeRoundTrip(t *testing.T) {
	want := SampleTime{Index: 3, MonotonicNS: 123456789012, Wall: "2026-11-25T13:00:00.123456789Z"}
	data := EncodeSampleTime(want)
	if !bytes.HasSuffix(data, []byte("}\n")) {
		t.Errorf("time file does not end in a newline: %q", data)
	}
	got, err := DecodeSampleTime(bytes.NewReader(data))
	if err != nil || got != want {
		t.Errorf("round trip = %+v (%v), want %+v", got, err, want)
	}
	for _, bad := range []string{``, `[]`, `{"index":"x"}`, `{"monotonic_ns":1e99}`} {
		if got, err := DecodeSampleTime(strings.NewReader(bad)); err == nil {
			t.Errorf("DecodeSampleTime(%s) = %+v, want an error", bad, got)
		}
	}
}

func FuzzDecodeSampleTime(f *testing.F) {
	f.Add(EncodeSampleTime(SampleTime{Index: 1, MonotonicNS: 2, Wall: "2026-11-25T13:00:00Z"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := DecodeSampleTime(bytes.NewReader(b)); err != nil && got != (SampleTime{}) {
			t.Fatalf("time %+v with error %v", got, err)
		}
	})
}
