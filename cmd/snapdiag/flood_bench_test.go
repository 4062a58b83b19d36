package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"golang.org/x/sys/unix"
)

// floodBenchWindows are the packet windows each capturer gets under the
// flood, unless FLOOD_WINDOWS lists others (e.g. "3s,10s"): capture's
// default of 2 s, where its fixed costs (start-up, the listener and
// counter samples, the sysctl walk, the bundle's commit) weigh most, and
// 10 s, a window a user sets to see a flood, over which they are spread as
// in a user's capture. tcpdump has no such fixed costs to spread.
var floodBenchWindows = []time.Duration{2 * time.Second, 10 * time.Second}

// BenchmarkLabFloodCaptureCPU measures, under the lab's 50,000 SYN/s flood
// into a listener with SYN cookies on, the CPU time (user plus system, from
// the child's rusage) per second of packet window of: snapdiag capture
// (--samples 1 --sample W, the whole capture), the same capture with
// --sample 0 (the rest of the capture, to tell the sample's own share),
// tcpdump -w with the filter and snap length the capture's manifest
// states, and, when SNAPDIAG_OLD names a binary (bench/flood.sh can build
// an older revision), that binary's capture; for each window W of
// floodBenchWindows. The capturers take turns, rotating the order each
// round, so they share the machine's load alike. For each window it
// reports each one's median, the whole capture's ratio to tcpdump and the
// sample's own (the capture's less the same round's --sample 0 run) ratio
// to tcpdump; the target is at most 1.
//
// Each window is measured twice (FLOOD_PIN=0 or 1 keeps one): as a user's
// host bills it, and pinned. This kernel has no IRQ time accounting: the
// flood's receive path (the server's SYN handling, its SYN-ACKs, every
// capturer's packet filter and ring copy) runs in softirq and is billed to
// whichever task is on the CPU, so a capturer on the CPU longer, or woken
// more often, is billed more of the flood's work, not its own. Pinned
// (metrics prefixed "pinned-"), the sender runs on CPU 1 and the capturer
// on CPU 0 (taskset), the receive path follows the sender, and each
// capturer is billed what it does itself: its system calls, its own
// reading of the ring, its user time. The in-kernel copy into the ring is
// then in neither's figure.
func BenchmarkLabFloodCaptureCPU(b *testing.B) {
	l := lab.New(b, lab.Options{})
	bin := testutil.Snapdiag(b)
	ln, err := l.FloodListener(8080)
	if err != nil {
		b.Fatal(err)
	}
	rounds := 3
	if s := os.Getenv("FLOOD_ROUNDS"); s != "" {
		if rounds, err = strconv.Atoi(s); err != nil || rounds < 1 || rounds > 20 {
			b.Fatalf("FLOOD_ROUNDS=%q: want 1..20", s)
		}
	}
	windows := floodBenchWindows
	if s := os.Getenv("FLOOD_WINDOWS"); s != "" {
		windows = nil
		for _, f := range strings.Split(s, ",") {
			w, err := time.ParseDuration(f)
			if err != nil || w < time.Second || w > 30*time.Second {
				b.Fatalf("FLOOD_WINDOWS=%q: want durations of 1s..30s, comma-separated", s)
			}
			windows = append(windows, w)
		}
	}
	runs := []floodRun{{}, {pinned: true}}
	switch os.Getenv("FLOOD_PIN") {
	case "":
	case "0":
		runs = runs[:1]
	case "1":
		runs = runs[1:]
	default:
		b.Fatalf("FLOOD_PIN=%q: want 0, 1 or nothing (both)", os.Getenv("FLOOD_PIN"))
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil || !allowed.IsSet(0) || !allowed.IsSet(1) {
		b.Log("CPUs 0 and 1 are not both ours: no pinned runs")
		runs = slices.DeleteFunc(runs, func(r floodRun) bool { return r.pinned })
		if len(runs) == 0 {
			b.Skip("FLOOD_PIN=1 needs two CPUs")
		}
	}
	dir := b.TempDir()
	// The filter tcpdump gets is the one a capture states.
	info, _, err := floodRun{}.capture(l, ln.Addr, bin, dir, windows[0])
	if err != nil {
		b.Fatal(err)
	}
	capturers := []floodCapturer{
		{"snapdiag", func(r floodRun, w time.Duration) (float64, string, error) {
			i, cpu, err := r.capture(l, ln.Addr, bin, dir, w)
			if err != nil {
				return 0, "", err
			}
			return cpu, fmt.Sprintf("kept %d of %d read, kernel drops %d", i.Packets, i.Sampling.Read, i.KernelDrops), nil
		}},
		{"tcpdump", func(r floodRun, w time.Duration) (float64, string, error) { return r.tcpdump(l, ln.Addr, info, dir, w) }},
		// The same capture without its packet sample: what the rest of
		// the capture costs, so the sample's own share is the difference.
		{"snapdiag-nosample", func(r floodRun, w time.Duration) (float64, string, error) {
			_, cpu, err := r.capture(l, ln.Addr, bin, dir, w, "--sample", "0")
			return cpu, "no packet sample", err
		}},
	}
	if old := os.Getenv("SNAPDIAG_OLD"); old != "" {
		capturers = append(capturers, floodCapturer{"snapdiag-old", func(r floodRun, w time.Duration) (float64, string, error) {
			i, cpu, err := r.capture(l, ln.Addr, old, dir, w)
			if err != nil {
				return 0, "", err
			}
			return cpu, fmt.Sprintf("kept %d, kernel drops %d, stopped by %s", i.Packets, i.KernelDrops, i.StoppedBy), nil
		}})
	}
	for b.Loop() {
		for _, run := range runs {
			for _, w := range windows {
				run.measure(b, w, rounds, capturers)
			}
		}
	}
	// FLOOD_PERF=DIR: one more capture per window, after the measured
	// ones, under perf record into DIR, to see where the capture's CPU
	// goes. A failure there leaves the figures above as they are.
	if out := os.Getenv("FLOOD_PERF"); out != "" {
		for _, w := range windows {
			data := filepath.Join(out, fmt.Sprintf("flood-%gs.perf.data", w.Seconds()))
			run := floodRun{wrap: []string{"perf", "record", "-q", "-g", "-F", "9999", "-o", data, "--"}}
			if _, _, err := run.capture(l, ln.Addr, bin, dir, w); err != nil {
				b.Errorf("capture under perf, %v window: %v", w, err)
				continue
			}
			b.Logf("%v window: one capture profiled (%s)", w, filepath.Base(data))
		}
	}
}

// floodRun is how a capturer and the flood are placed on the CPUs:
// anywhere, as on a user's host, or pinned apart (see
// BenchmarkLabFloodCaptureCPU).
type floodRun struct {
	pinned bool
	// wrap, when set, is a command the capturer runs under (perf record
	// ... --); not measured.
	wrap []string
}

// floodCapturer is one program measured under the flood.
type floodCapturer struct {
	name string
	run  func(r floodRun, w time.Duration) (float64, string, error)
}

// measure runs each capturer rounds times with a packet window of w, in
// turns, and reports their medians and ratios.
func (run floodRun) measure(b *testing.B, w time.Duration, rounds int, capturers []floodCapturer) {
	cpu := map[string][]float64{}
	for r := range rounds {
		for k := range capturers {
			c := capturers[(r+k)%len(capturers)]
			secs, note, err := c.run(run, w)
			if err != nil {
				b.Fatalf("%s%s, %v window: %v", run.label(), c.name, w, err)
			}
			perSec := secs / w.Seconds()
			cpu[c.name] = append(cpu[c.name], perSec)
			b.Logf("%v window, %sround %d %s: %.4f CPU s per s of window (%s), load %s", w, run.label(), r, c.name, perSec, note, loadAvg())
		}
	}
	pre := fmt.Sprintf("%sw%gs-", run.metric(), w.Seconds())
	for _, c := range capturers {
		b.ReportMetric(median(cpu[c.name]), pre+c.name+"-cpu-s/s")
	}
	whole := median(cpu["snapdiag"]) / median(cpu["tcpdump"])
	b.ReportMetric(whole, pre+"snapdiag/tcpdump")
	// The packet sample's own cost: the capture's less the same
	// capture's without a sample, each pair taken in the same round.
	var sample []float64
	for i := range cpu["snapdiag"] {
		sample = append(sample, cpu["snapdiag"][i]-cpu["snapdiag-nosample"][i])
	}
	alone := median(sample) / median(cpu["tcpdump"])
	b.ReportMetric(median(sample), pre+"sample-cpu-s/s")
	b.ReportMetric(alone, pre+"sample/tcpdump")
	if _, ok := cpu["snapdiag-old"]; ok {
		b.ReportMetric(median(cpu["snapdiag"])/median(cpu["snapdiag-old"]), pre+"snapdiag/old")
	}
	b.Logf("%v window, %s: whole capture %.2fx tcpdump (target <= 1: %s), sample alone %.2fx tcpdump (%s)",
		w, run, whole, meets(whole), alone, meets(alone))
}

// String names the placement in the log.
func (run floodRun) String() string {
	if run.pinned {
		return "pinned (sender on CPU 1, capturer on CPU 0)"
	}
	return "as billed on a user's host (unpinned)"
}

func (run floodRun) label() string {
	if run.pinned {
		return "pinned, "
	}
	return ""
}

func (run floodRun) metric() string {
	if run.pinned {
		return "pinned-"
	}
	return ""
}

// flood starts the flood for a window of w, its sender on CPU 1 when
// pinned.
func (run floodRun) flood(l *lab.Lab, ctx context.Context, target netip.AddrPort, w time.Duration) (*lab.RateFlood, error) {
	o := lab.RateFloodOpts{Target: target, Duration: w + 10*time.Second}
	if run.pinned {
		o.CPUs = []int{1}
	}
	return l.FloodSYNs(ctx, o)
}

// start starts name with args in the server namespace, on CPU 0 when
// pinned (taskset execs it: the process measured is the program's).
func (run floodRun) start(l *lab.Lab, ctx context.Context, name string, args ...string) (*lab.Proc, error) {
	if len(run.wrap) > 0 {
		name, args = run.wrap[0], append(append(slices.Clone(run.wrap[1:]), name), args...)
	}
	if run.pinned {
		return l.Start(ctx, l.Server, "taskset", append([]string{"-c", "0", name}, args...)...)
	}
	return l.Start(ctx, l.Server, name, args...)
}

// meets says whether a ratio to tcpdump meets the target of at most 1.
func meets(ratio float64) string {
	if ratio <= 1 {
		return "met"
	}
	return "not met"
}

// loadAvg is the machine's 1-minute load average, to read each figure
// against: the bench shares the machine.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

// capture floods target for the capture's time and runs bin's capture
// with a packet window of w in the server namespace; it returns the
// manifest's packets facts and the capture's CPU seconds.
func (run floodRun) capture(l *lab.Lab, target netip.AddrPort, bin, dir string, w time.Duration, extra ...string) (*bundle.PacketsInfo, float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w+30*time.Second)
	defer cancel()
	flood, err := run.flood(l, ctx, target, w)
	if err != nil {
		return nil, 0, err
	}
	defer flood.Stop()
	out := filepath.Join(dir, fmt.Sprintf("b%d", time.Now().UnixNano()))
	if err := os.Mkdir(out, 0o700); err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(out)
	args := append([]string{"capture", "--out", out, "--samples", "1", "--sample", w.String(),
		// A window as long as the default deadline needs a later one.
		"--deadline", (w + 20*time.Second).String(), "--reason", "bench"}, extra...)
	p, err := run.start(l, ctx, bin, args...)
	if err != nil {
		return nil, 0, err
	}
	if err := p.Wait(); err != nil {
		return nil, 0, fmt.Errorf("capture: %w: %s", err, p.Stderr())
	}
	st := p.Cmd.ProcessState
	cpu := (st.UserTime() + st.SystemTime()).Seconds()
	path := lastLine(p.Stdout())
	b, err := bundle.Open(path, bundle.DefaultLimits())
	if err != nil {
		return nil, 0, err
	}
	defer b.Close()
	raw, err := b.ReadFile(bundle.PathManifest)
	if err != nil {
		return nil, 0, err
	}
	var m bundle.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, 0, err
	}
	if m.Packets == nil {
		if len(extra) > 0 {
			return nil, cpu, nil
		}
		return nil, 0, fmt.Errorf("capture %s has no packet sample", path)
	}
	if m.Packets.Sampling == nil {
		m.Packets.Sampling = &bundle.PacketSampling{}
	}
	return m.Packets, cpu, nil
}

// tcpdump floods target and runs tcpdump -w on every interface of the
// server namespace with info's filter and snap length for w from when it
// says it listens; it returns tcpdump's CPU seconds.
func (run floodRun) tcpdump(l *lab.Lab, target netip.AddrPort, info *bundle.PacketsInfo, dir string, w time.Duration) (float64, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w+30*time.Second)
	defer cancel()
	flood, err := run.flood(l, ctx, target, w)
	if err != nil {
		return 0, "", err
	}
	defer flood.Stop()
	file := filepath.Join(dir, "tcpdump.pcap")
	defer os.Remove(file)
	p, err := run.start(l, ctx, "tcpdump", "-i", "any", "-n", "-w", file, "-s", strconv.Itoa(info.Snaplen), info.Filter)
	if err != nil {
		return 0, "", err
	}
	err = lab.WaitFor(l.Done(), 10*time.Second, 10*time.Millisecond, "tcpdump to listen", func() (bool, string, error) {
		select {
		case <-p.Done():
			return false, "", fmt.Errorf("tcpdump exited: %s", p.Stderr())
		default:
		}
		return strings.Contains(p.Stderr(), "listening on"), p.Stderr(), nil
	})
	if err != nil {
		p.Stop()
		return 0, "", err
	}
	select {
	case <-time.After(w):
	case <-p.Done():
		return 0, "", fmt.Errorf("tcpdump exited early: %s", p.Stderr())
	}
	p.Stop()
	st := p.Cmd.ProcessState
	var stats []string
	for _, line := range strings.Split(p.Stderr(), "\n") {
		if strings.Contains(line, "packets") {
			stats = append(stats, strings.TrimSpace(line))
		}
	}
	return (st.UserTime() + st.SystemTime()).Seconds(), strings.Join(stats, ", "), nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
