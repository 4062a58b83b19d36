package analyze

import (
	"runtime"
	"testing"

	"github.com/snapdiag/snapdiag/internal/nodebundle"
)

// BenchmarkWholeNode analyzes a whole-node bundle of 500 namespaces (one
// SYN flood, one stuck acceptor, the rest recorded healthy), against what a
// user would run without one: analyze on 500 bundles of one namespace
// each, alternated in the same run. It reports the heap the loaded node
// holds (live-MiB, after a GC) beside the usual allocation figures.
//
//	go test -run '^$' -bench WholeNode -benchtime 3x ./analyze/
func BenchmarkWholeNode(b *testing.B) {
	const n = 500
	node := nodebundle.Write(b, b.TempDir(), fixHealthy, nodeSpec(n, 100, 400))
	b.Run("node", func(b *testing.B) {
		b.ReportAllocs()
		var live uint64
		for b.Loop() {
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			s, err := LoadPath(node)
			if err != nil {
				b.Fatal(err)
			}
			r := Analyze(s, node, Rules())
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			live = max(live, after.HeapAlloc-min(before.HeapAlloc, after.HeapAlloc))
			if len(r.Namespaces) != n+1 {
				b.Fatalf("%d namespaces", len(r.Namespaces))
			}
			runtime.KeepAlive(s)
		}
		b.ReportMetric(float64(live)/(1<<20), "live-MiB")
	})
	b.Run("separate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range n {
				p := fixHealthy
				switch i {
				case 100:
					p = fixSYN
				case 400:
					p = fixAccept
				}
				s, err := LoadPath(p)
				if err != nil {
					b.Fatal(err)
				}
				Analyze(s, p, Rules())
			}
		}
	})
}
