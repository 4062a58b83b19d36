package analyze

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// sampledInfo is the manifest's account of a cookie-flood sample whose
// first second kept 1 packet in 10 (100 offered, 10 kept) and whose later
// seconds kept everything.
func sampledInfo() *bundle.PacketsInfo {
	return &bundle.PacketsInfo{Filter: "x", StoppedBy: "window",
		Keeps: &bundle.PacketKeeps{Ports: []int{}, ListenPorts: []int{8080}},
		Sampling: &bundle.PacketSampling{Method: bundle.SamplingPerFlow, Start: time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC),
			BudgetPerSecond: 10, Read: 112, SamplingDrops: 90,
			Seconds: []bundle.PacketSecond{{Offered: 100, Kept: 10, OneIn: 16}, {Offered: 3, Kept: 3, OneIn: 1},
				{Offered: 1, Kept: 1, OneIn: 1}, {Offered: 1, Kept: 1, OneIn: 1}}}}
}

// TestParsePcapSampled: a handshake from a second that kept 1 packet in 10
// stands for 10 in the estimates; the counts stay the sample's; a bundle
// without sampling facts (older snapdiag) estimates nothing.
func TestParsePcapSampled(t *testing.T) {
	for _, tc := range []struct {
		name        string
		info        *bundle.PacketsInfo
		sampled     bool
		halfOpenEst float64
	}{
		{"sampled", sampledInfo(), true, 10},
		{"old bundle", &bundle.PacketsInfo{Filter: "x", StoppedBy: "window", Keeps: sampledInfo().Keeps}, false, 1},
		{"sampling recorded, nothing left out", func() *bundle.PacketsInfo {
			i := sampledInfo()
			i.Sampling.SamplingDrops = 0
			return i
		}(), false, 1},
	} {
		pa, err := parsePcap(bytes.NewReader(cookieFloodPcap(t, true)), tc.info)
		if err != nil {
			t.Fatal(err)
		}
		if pa.HalfOpen != 1 || pa.Sampled != tc.sampled || pa.HalfOpenEst != tc.halfOpenEst {
			t.Errorf("%s: %d half-open, sampled %v, estimated %v; want 1, %v, %v", tc.name, pa.HalfOpen, pa.Sampled, pa.HalfOpenEst, tc.sampled, tc.halfOpenEst)
		}
		port := uint16(8080)
		if rate, want := packetHalfOpenRate(pa, port), tc.halfOpenEst/pa.End.Sub(pa.Start).Seconds(); rate != want {
			t.Errorf("%s: half-open rate %v, want %v", tc.name, rate, want)
		}
	}
}

// TestHalfOpenRuleSampled: the half-open-clients diagnosis of a sampled
// capture carries the estimate and the scale, and its evidence says the
// value is estimated (SampleScale), with the sample's own count kept.
func TestHalfOpenRuleSampled(t *testing.T) {
	f := host(t).sysctl("net.ipv4.tcp_syncookies", "1").
		listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(16, 0, 0)} }).
		ramp("TcpExt", "TCPReqQFullDoCookies", 23).ramp("TcpExt", "SyncookiesSent", 23)
	f.set(bundle.PathPackets, string(cookieFloodPcap(t, true)))
	var m map[string]any
	if err := json.Unmarshal(f.fs[bundle.PathManifest].Data, &m); err != nil {
		t.Fatal(err)
	}
	m["packets"] = sampledInfo()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	f.fs[bundle.PathManifest].Data = b
	fd := findingByID(t, f.report(), IDHalfOpenClients)
	d := diagnosis[*HalfOpenClients](t, fd)
	if !d.Sampled || d.HalfOpen != 1 || d.Estimated != 10 || d.Scale <= 1 {
		t.Errorf("diagnosis: sampled %v, %d half-open, %d estimated, scale %v; want a 1-in-N estimate of 10", d.Sampled, d.HalfOpen, d.Estimated, d.Scale)
	}
	var ev *Evidence
	for i := range fd.Evidence {
		if fd.Evidence[i].Metric == "half-open handshakes" {
			ev = &fd.Evidence[i]
		}
	}
	if ev == nil || ev.Value != 10 || ev.SampleScale != d.Scale {
		t.Errorf("half-open evidence %+v, want value 10 estimated at scale %v", ev, d.Scale)
	}
}
