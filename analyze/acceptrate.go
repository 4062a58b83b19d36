package analyze

import "time"

// AcceptRate is the rate at which the kernel completed handshakes into
// accept queues over the capture (Tcp.PassiveOpens per second, every
// listener of the namespace together), a measure of the host's load; ok is
// false when fewer than two samples carry the counter or it went backwards.
func (s *Snapshot) AcceptRate() (perSecond float64, ok bool) {
	d := s.Delta(tcpPassiveOpens)
	if !d.OK || d.Seconds <= 0 {
		return 0, false
	}
	return round2(d.PerSecond), true
}

// AcceptInterval is the handshakes completed between two consecutive
// samples that carry Tcp.PassiveOpens: the load over that stretch of time.
type AcceptInterval struct {
	// Start is the wall time of the interval's first sample (UTC).
	Start    time.Time
	Seconds  float64
	Accepted int64
	// History is true when both samples were taken before the capture, by
	// the watchdog (the manifest's history_samples): load before trouble.
	History bool
}

// AcceptIntervals is the accepted-connection load between each pair of
// consecutive samples, watch history included, in sample order. An
// interval is left out when a sample has no wall time, no time passed, or
// the counter went backwards (a namespace recreated between samples).
func (s *Snapshot) AcceptIntervals() []AcceptInterval {
	history := 0
	if s.Manifest != nil {
		history = s.Manifest.Options.History
	}
	var out []AcceptInterval
	prev := -1
	for i := range s.Samples {
		if _, ok := s.Samples[i].Values[tcpPassiveOpens]; !ok {
			continue
		}
		if prev >= 0 {
			a, b := s.Samples[prev], s.Samples[i]
			secs := s.seconds(prev, i)
			n := b.Values[tcpPassiveOpens] - a.Values[tcpPassiveOpens]
			if start, ok := a.wall(); ok && secs > 0 && n >= 0 {
				out = append(out, AcceptInterval{Start: start, Seconds: secs, Accepted: n, History: b.Index < history})
			}
		}
		prev = i
	}
	return out
}

// wall is the sample's wall time, ok false when it has none.
func (s *Sample) wall() (time.Time, bool) {
	if s.Time == nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s.Time.Wall)
	return t.UTC(), err == nil
}
