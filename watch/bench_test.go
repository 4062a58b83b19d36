package watch

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"
)

// BenchmarkCycle measures one cycle of a watch at --every 1s with 10 minutes
// of history, the history already full: a counter sample into memory, the
// oldest sample dropped, and a tcp check against a local listener. At 1 s per
// cycle, ns/op divided by 10^7 is the percentage of one core; the
// history-MiB metric is what the full history holds.
//
//	go test ./watch -run '^$' -bench Cycle -benchmem
func BenchmarkCycle(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	check, err := ParseCheck("tcp://"+ln.Addr().String(), CheckOptions{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	w, err := New(Config{
		Checks: []*Check{check}, Every: time.Second, Failures: 1 << 30,
		History: 10 * time.Minute, Capture: quickCapture(b.TempDir()),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	w.FillHistory(ctx, 600)
	if w.History().Len() != 600 {
		b.Fatalf("history holds %d samples, want 600", w.History().Len())
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if inc := w.Cycle(ctx); inc != nil {
			b.Fatalf("triggered: %+v", inc.Failed.Err)
		}
	}
	b.StopTimer()
	perCycle := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perCycle/1e7, "%core@1s")
	b.ReportMetric(float64(w.History().Bytes())/(1<<20), "history-MiB")
}
