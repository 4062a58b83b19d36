package analyze

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
)

// writeBigBundle unpacks a bundle of 200,000 sockets (with tcp_info) and 600
// counter samples into dir: the recorded host's files, repeated, with the
// counters moving. It is the benchmark's load, not a fixture.
func writeBigBundle(tb testing.TB, dir string, samples, sockets int) {
	base := host(tb)
	for p, f := range base.fs {
		var i int
		if _, err := fmt.Sscanf(p, "samples/%03d/", &i); err == nil {
			continue
		}
		writeFile(tb, filepath.Join(dir, p), f.Data)
	}
	first := base.samples()[0]
	ls := make([]bundle.Listener, 20)
	for i := range ls {
		ls[i] = listener(4096, 0, i)
		ls[i].Port, ls[i].Local, ls[i].Cookie = 8000+i, fmt.Sprintf("0.0.0.0:%d", 8000+i), uint64(i+1)
	}
	lj := bundle.EncodeListeners(ls)
	for i := 0; i < samples; i++ {
		for _, name := range []string{bundle.SampleNetstat, bundle.SampleSNMP, bundle.SampleSNMP6, bundle.SampleSockstat,
			bundle.SampleSockstat6, bundle.SampleSoftnet, bundle.SampleDev, bundle.SampleConntrack} {
			if f, ok := base.fs[bundle.SampleFile(first, name)]; ok {
				writeFile(tb, filepath.Join(dir, bundle.SampleFile(i, name)), f.Data)
			}
		}
		t := bundle.EncodeSampleTime(bundle.SampleTime{Index: i, MonotonicNS: int64(i) * 1e9, Wall: "2026-11-25T13:00:00Z"})
		writeFile(tb, filepath.Join(dir, bundle.SampleFile(i, bundle.SampleTimeFile)), t)
		writeFile(tb, filepath.Join(dir, bundle.SampleFile(i, bundle.SampleListeners)), lj)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sockets"), 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, bundle.PathSocketsTCP))
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	var row []byte
	states := []string{"ESTAB", "TIME-WAIT", "SYN-RECV", "ESTAB", "CLOSE-WAIT"}
	for i := 0; i < sockets; i++ {
		s := bundle.Socket{Family: "inet", State: states[i%len(states)],
			Local:  fmt.Sprintf("10.0.%d.%d:%d", i/65536%256, i/256%256, 8000+i%20),
			Remote: fmt.Sprintf("10.1.%d.%d:%d", i/256%256, i%256, 32768+i%28000),
			Timer:  "on", Retrans: uint8(i % 3),
			Info: &bundle.TCPInfo{State: 1, RTT: 1000, SndCwnd: 10, SndMSS: 1448, RcvMSS: 1448, BytesAcked: uint64(i), SegsOut: 12, SegsIn: 10}}
		row = bundle.AppendSocket(row[:0], &s)
		if _, err := w.Write(row); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

func writeFile(tb testing.TB, p string, b []byte) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkAnalyzeBig analyzes a bundle of 200,000 sockets and 600 samples
// (target: under 1 s and 256 MiB peak RSS). maxrss_MiB is the process's
// peak, which includes building the bundle.
func BenchmarkAnalyzeBig(b *testing.B) {
	dir := b.TempDir()
	writeBigBundle(b, dir, 600, 200000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s, err := LoadDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		r := Analyze(s, dir, Rules())
		if s.Sockets.Rows != 200000 || len(s.Samples) != 600 || r.Schema != Schema {
			b.Fatalf("rows %d samples %d", s.Sockets.Rows, len(s.Samples))
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss_MiB")
	}
}
