package fleet_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/fleet"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// TestWatchHistoryLoad: a bundle that carries the watchdog's history (real
// samples of this machine's counters, taken around connections the test
// makes on loopback, their wall times set hours before the capture) gives
// its accepted rate before the capture, its load per hour, and the fleet's
// hour-of-day profile with the busiest hour marked.
func TestWatchHistoryLoad(t *testing.T) {
	testutil.NeedRoot(t, "the capture reads the socket table")
	_, port := testutil.Listen(t, netip.MustParseAddrPort("127.0.0.1:0"), 128)
	h := collectors.DefaultHost()
	h.PacketWindow = 0
	_, samplers := collectors.DefaultSet(h)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Hours 03, 04 and 05 UTC of a past day; 20 handshakes completed in
	// the first two intervals, none after.
	base := time.Date(2026, 11, 2, 3, 30, 0, 0, time.UTC)
	const conns = 20
	var hist []collectors.HistorySample
	for i := range 3 {
		s, err := collectors.TakeSample(ctx, h, samplers)
		if err != nil {
			t.Fatalf("history sample %d: %v", i, err)
		}
		s.Time.Wall = base.Add(time.Duration(i) * time.Hour).Format(time.RFC3339Nano)
		hist = append(hist, s)
		if i < 2 {
			for range conns {
				testutil.Dial(t, "tcp4", netip.MustParseAddr("127.0.0.1"), port)
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "prod", "web1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := collectors.Capture(ctx, collectors.Options{Dir: dir, Samples: 2, Interval: 50 * time.Millisecond, Deadline: 20 * time.Second,
		Host: h, Samplers: samplers, History: hist, Trigger: bundle.Trigger{Reason: "test: watch history"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Options.History != 3 {
		t.Fatalf("manifest history_samples %d, want 3", res.Manifest.Options.History)
	}

	results, _, err := fleet.Run(ctx, fleet.NewDirSource(filepath.Dir(filepath.Dir(dir))), fleet.Options{Cache: fleet.Cache{Dir: t.TempDir()}})
	if err != nil || len(results) != 1 || results[0].Err != nil {
		t.Fatalf("fleet: %v %+v", err, results)
	}
	s := results[0].Summary
	if s.HistorySamples != 3 || s.HistoryAcceptRate == nil || *s.HistoryAcceptRate <= 0 {
		t.Errorf("history: %d samples at %v accepted/s, want 3 at a positive rate", s.HistorySamples, s.HistoryAcceptRate)
	}
	if s.Packets != fleet.PacketsAbsent {
		t.Errorf("packet evidence %q of a capture without a packet sample, want %q", s.Packets, fleet.PacketsAbsent)
	}
	// Each history interval is attributed to its first sample's hour; the
	// capture's own intervals to now.
	got := map[int]int64{}
	for _, x := range s.Hours {
		if x.Hour.Before(base.Add(3 * time.Hour)) {
			got[x.Hour.Hour()] = x.Accepted
		}
	}
	if len(got) != 3 || got[3] < conns || got[4] < conns {
		t.Errorf("history hours %v (of %+v), want 03, 04 and 05 UTC with at least %d accepted in 03 and 04", got, s.Hours, conns)
	}

	rep := fleet.Build("history", results, fleet.Filter{})
	hours := map[int]fleet.HourLoad{}
	for _, x := range rep.Hours {
		hours[x.Hour] = x
	}
	measured := 0
	for _, x := range rep.Hours {
		if x.AcceptRate != nil {
			measured++
		}
	}
	if rep.Busiest.Sampled != measured || measured < 3 {
		t.Errorf("busiest over %d sampled hours, the report measures %d (want 3 or more)", rep.Busiest.Sampled, measured)
	}
	for _, hr := range []int{3, 4, 5} {
		if x, ok := hours[hr]; !ok || x.AcceptRate == nil {
			t.Errorf("report hour %02d: %+v, want a measured rate", hr, x)
		}
	}
	// The top quarter of the (three or four) sampled hours is one: an
	// hour of the test's handshakes.
	if len(rep.Busiest.Hours) != 1 || !slices.Contains([]int{3, 4}, rep.Busiest.Hours[0]) || !hours[rep.Busiest.Hours[0]].Busiest {
		t.Errorf("busiest hours %v over %+v, want 03 or 04", rep.Busiest.Hours, rep.Hours)
	}
	if len(rep.Load) != 1 || rep.Load[0].HistorySamples != 3 || rep.Load[0].HistoryAcceptRate == nil {
		t.Errorf("load %+v, want the bundle's history rate", rep.Load)
	}
}
