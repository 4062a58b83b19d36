package watch

import "testing"

func TestParseBytes(t *testing.T) {
	good := map[string]int64{
		"0": 0, "4096": 4096, "512K": 512 << 10, "512KiB": 512 << 10, "100M": 100 << 20, "100MB": 100 << 20,
		"1.5G": 3 << 29, "2GiB": 2 << 30, "1T": 1 << 40, " 8m ": 8 << 20,
	}
	for in, want := range good {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	// NaN and Inf parse as floats; NaN compares false with every bound and
	// converts to a negative int64, which once disabled --min-free.
	for _, in := range []string{"", "-1", "1X", "G", "1e30", "ten",
		"NaN", "nan", "NaNK", "Inf", "+Inf", "-Inf", "infinity", "InfG", "-0.5", "-1K",
		"9223372036854775807", "8388608T", "0x10", "1_000"} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		}
	}
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1536: "1.5KiB", 256 << 20: "256.0MiB", 1 << 30: "1.0GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// FuzzParseBytes checks that any accepted size is a non-negative byte count
// that FormatBytes can print, and that nothing panics.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"0", "512K", "1.5G", "2GiB", "NaN", "Inf", "-1", "1e30", " 8m "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseBytes(s)
		if err != nil {
			return
		}
		if v < 0 || v > 1<<62 {
			t.Fatalf("ParseBytes(%q) = %d, outside 0..2^62", s, v)
		}
		var b ByteSize
		if err := b.Set(s); err != nil || int64(b) != v {
			t.Fatalf("ByteSize.Set(%q) = %d, %v; ParseBytes gave %d", s, b, err, v)
		}
		_ = FormatBytes(v)
	})
}
