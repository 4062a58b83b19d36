package analyze_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
)

// floodWindow is the packet sample's window under the flood: a few
// seconds, each of which must be in the sample.
const floodWindow = 3

// TestLabCaptureUnderFlood captures a server taking 50,000 forged SYNs a
// second, through the real binary: the capture meets its deadline with a
// complete bundle, the packet sample holds packets from every second of
// its window, its sampling facts add up and say it sampled, and analyze
// names the flood on the flooded listener.
func TestLabCaptureUnderFlood(t *testing.T) { captureUnderFlood(t, false) }

// TestLabCaptureUnderFloodBusyCPU is the same with every core of the host
// kept busy by spinning processes outside the lab's namespaces: the
// capture still meets its deadline.
func TestLabCaptureUnderFloodBusyCPU(t *testing.T) { captureUnderFlood(t, true) }

func captureUnderFlood(t *testing.T, hog bool) {
	l := lab.New(t, lab.Options{})
	bin := testutil.Snapdiag(t)
	ln, err := l.FloodListener(8080)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before, err := l.Counters(l.Server)
	if err != nil {
		t.Fatal(err)
	}
	flood, err := l.FloodSYNs(ctx, lab.RateFloodOpts{Target: ln.Addr, Rate: lab.DefaultFloodRate, Duration: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Stop()
	err = lab.WaitFor(l.Done(), 5*time.Second, 25*time.Millisecond, "the server to send SYN cookies", func() (bool, string, error) {
		c, err := l.Counters(l.Server)
		if err != nil {
			return false, "", err
		}
		n := c.Sub(before)["TcpExt.SyncookiesSent"]
		return n > 0, fmt.Sprintf("%d cookies", n), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if hog {
		spin(t, ctx, runtime.NumCPU())
	}

	const deadline = 10 * time.Second
	start, sentBefore := time.Now(), flood.Sent()
	out, err := l.Exec(ctx, l.Server, bin, "capture", "--out", t.TempDir(), "--samples", "3", "--interval", "1s",
		"--sample", fmt.Sprintf("%ds", floodWindow), "--deadline", deadline.String(), "--reason", "flood")
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	elapsed := time.Since(start)
	rate := float64(flood.Sent()-sentBefore) / elapsed.Seconds()
	t.Logf("flood: %.0f SYNs/s during the capture (%v)", rate, elapsed.Round(time.Millisecond))
	path := strings.TrimSpace(string(out.Stdout))
	path = path[strings.LastIndexByte(path, '\n')+1:]

	var m bundle.Manifest
	if err := json.Unmarshal(testutil.ReadMember(t, path, bundle.PathManifest), &m); err != nil {
		t.Fatal(err)
	}
	// The capture's own cost is recorded: CPU time, peak memory within the
	// capture's bounds (the ring's 4 MiB, the sample's 16 MiB, the socket
	// table streamed), and the lowered priority it ran at.
	c := m.Cost
	if c == nil {
		t.Fatal("manifest has no cost")
	}
	t.Logf("capture cost: %.0f ms user + %.0f ms system CPU, peak RSS %d KiB, wall %.0f ms, priority %+v",
		c.CPUUserMS, c.CPUSystemMS, c.PeakRSSKiB, c.WallMS, c.Priority)
	if c.CPUUserMS+c.CPUSystemMS <= 0 || c.PeakRSSKiB < 1<<10 || c.PeakRSSKiB > 100<<10 {
		t.Errorf("capture cost %+v: want CPU time > 0 and a peak RSS of 1 to 100 MiB", *c)
	}
	if c.Priority == nil || c.Priority.Nice < 10 {
		t.Errorf("capture priority %+v: want the default low priority (nice 10)", c.Priority)
	}
	if c.WallMS > float64(deadline/time.Millisecond) {
		t.Errorf("capture took %.0f ms, deadline %v", c.WallMS, deadline)
	}
	if m.DeadlineHit {
		t.Errorf("the capture hit its %v deadline under the flood", deadline)
	}
	for _, c := range m.Collectors {
		if c.Status != bundle.StatusOK && c.Status != bundle.StatusAbsent {
			t.Errorf("collector %s: %s (%s)", c.Name, c.Status, c.Error)
		}
	}
	p := m.Packets
	if p == nil || p.Sampling == nil {
		t.Fatalf("manifest packets %+v, want the sampling facts", p)
	}
	sp := p.Sampling
	t.Logf("packet sample: %d read, %d kept, %d left out by sampling, 1 in %.1f; kernel drops %d, freezes %d; seconds %+v",
		sp.Read, p.Packets, sp.SamplingDrops, p.Scale(), p.KernelDrops, sp.KernelFreezes, sp.Seconds)
	var kept int64
	for _, s := range sp.Seconds {
		kept += s.Kept
	}
	if int64(p.Packets) > sp.Read || kept != int64(p.Packets) || len(sp.Seconds) != floodWindow {
		t.Errorf("kept %d packets (%d by the seconds) of %d read, in %d seconds; want kept <= read, %d seconds",
			p.Packets, kept, sp.Read, len(sp.Seconds), floodWindow)
	}
	if !p.Sampled() || p.Scale() <= 1 {
		t.Errorf("sampled %v at 1 in %.2f: a 50,000/s flood must be sampled", p.Sampled(), p.Scale())
	}
	// The flood is sampled in the kernel's filter, not copied to the ring
	// to be left out (it read 4.7 packets a packet kept when half the
	// divisor stayed out of the kernel), and the seconds' estimates of
	// the packets on the wire are still honest: the server answers every
	// SYN with a cookie SYN-ACK, so the window saw two packets a SYN.
	// With every core busy, snapdiag (at nice 10) may come to the ring
	// only once the kernel filled it, before the filter first changed:
	// the ring's 4 MiB hold about 18,000 headers-only packets.
	slack := int64(0)
	if hog {
		slack = 18_000
	}
	if sp.Read >= 2*int64(p.Packets)+slack {
		t.Errorf("read %d packets to keep %d: the kernel's filter should have left the flood's rest out", sp.Read, p.Packets)
	}
	var wire int64
	for _, s := range sp.Seconds {
		wire += s.Total()
	}
	if want := 2 * rate * floodWindow; float64(wire) < 0.75*want || float64(wire) > 1.25*want {
		t.Errorf("the seconds estimate %d packets on the wire, the flood's rate says %.0f", wire, want)
	}

	// Every second of the window is in the sample.
	pr, err := bundle.NewPcapReader(bytes.NewReader(testutil.ReadMember(t, path, bundle.PathPackets)), bundle.PcapLimits{})
	if err != nil {
		t.Fatal(err)
	}
	perSecond := make([]int, floodWindow)
	for {
		rec, err := pr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i := int(rec.Time.Sub(sp.Start) / time.Second); i >= 0 && i < floodWindow {
			perSecond[i]++
		}
	}
	for i, n := range perSecond {
		if n == 0 {
			t.Errorf("no packet from second %d of the window: %v", i, perSecond)
		}
	}

	s, r := loadAndAnalyze(t, path)
	defer logReport(t, r)
	f := only(t, r, analyze.IDSyncookiesActive)
	if d := diagnosis[*analyze.CookieOverflow](t, f); d.Verdict != analyze.CookieFlood {
		t.Errorf("verdict %v, want a flood", d.Verdict)
	}
	if f.Listener != ln.Addr.String() {
		t.Errorf("syncookies-active on %q, want %s", f.Listener, ln.Addr)
	}
	if s.Packets == nil || !s.Packets.Sampled || s.Packets.Scale <= 1 {
		t.Errorf("the analysis does not know the sample was sampled: %+v", s.Packets)
	}
}

// spin starts n processes that spin on a core each, outside the lab's
// namespaces, until ctx ends or the test does; they are killed by pid.
func spin(t *testing.T, ctx context.Context, n int) {
	ctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	for range n {
		cmd := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(cancel)
}
