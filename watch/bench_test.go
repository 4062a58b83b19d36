package watch

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
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

// BenchmarkScrape measures one scrape of /metrics on a host with 10,000
// listeners, through the HTTP handler Prometheus calls: "new-sample" is the
// first scrape after a sample (counters parsed, the 256 fullest of the
// sampler's listeners chosen, the page written), "same-sample" a second
// scrape of it, and "all-listeners" the first scrape with
// --metrics-listeners 10000, every listener on the page. Targets: under
// 50 ms and 5 MiB allocated per scrape.
//
//	go test ./watch -run '^$' -bench Scrape -benchmem
func BenchmarkScrape(b *testing.B) {
	h := collectors.DefaultHost()
	s, err := collectors.TakeSample(context.Background(), h, []collectors.Sampler{collectors.Counters{}})
	if err != nil {
		b.Logf("sample: %v", err)
	}
	ls := make([]bundle.Listener, 10_000)
	for i := range ls {
		drops := uint32(i % 7)
		ls[i] = bundle.Listener{
			Proto: "tcp", Family: "inet", Local: fmt.Sprintf("10.%d.%d.1:%d", i/250, i%250, 1024+i), Addr: "10.0.0.1",
			Port: 1024 + i, RecvQ: uint32(i % 129), SendQ: 128, SynRecv: i % 200, UID: 1000, Inode: uint32(100000 + i),
			Cookie: uint64(i), PID: 4000 + i%50, Comm: fmt.Sprintf("svc%d", i%50), Drops: &drops,
		}
	}
	s.Files[bundle.SampleListeners] = bundle.EncodeListeners(ls)
	sys := collectors.ReadSysctls(h, analyze.ListenSysctls())
	m := NewMetrics(MetricsConfig{})
	m.setKernel(collectors.HostFacts(h).KernelRelease)
	handler := m.Handler()
	scrape := func() int {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("scrape: %d %s", rec.Code, rec.Body)
		}
		return rec.Body.Len()
	}
	b.Run("new-sample", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			m.observeSample(s, ls, sys)
			n = scrape()
		}
		b.ReportMetric(float64(n), "page-bytes")
	})
	b.Run("same-sample", func(b *testing.B) {
		m.observeSample(s, ls, sys)
		scrape()
		b.ReportAllocs()
		for b.Loop() {
			scrape()
		}
	})
	all := NewMetrics(MetricsConfig{MaxListeners: len(ls)})
	all.setKernel(collectors.HostFacts(h).KernelRelease)
	allHandler := all.Handler()
	b.Run("all-listeners", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			all.observeSample(s, ls, sys)
			rec := httptest.NewRecorder()
			allHandler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("scrape: %d %s", rec.Code, rec.Body)
			}
			n = rec.Body.Len()
		}
		b.ReportMetric(float64(n), "page-bytes")
	})
}
