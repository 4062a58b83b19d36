package analyze

import (
	"slices"
	"strings"
	"time"
)

// Delta is how a cumulative counter moved between the first and the last
// sample that have it. Counters are cumulative since boot, so only Delta and
// PerSecond say anything about the time of the capture; First and Last are
// history.
type Delta struct {
	Counter   Counter
	First     int64
	Last      int64
	Delta     int64
	PerSecond float64 // 0 when the interval is unknown
	Seconds   float64 // the interval, 0 when unknown
	// Samples is how many samples had the metric; OK is false when fewer than
	// two did, or when the counter went backwards (a reset: the namespace or
	// module was re-created between samples).
	Samples int
	OK      bool
	Source  string // the last sample's member
}

// Moved reports whether the counter rose during the capture.
func (d Delta) Moved() bool { return d.OK && d.Delta > 0 }

// Delta returns the movement of counter c over the capture.
func (s *Snapshot) Delta(c Counter) Delta {
	d := Delta{Counter: c}
	first, last := -1, -1
	for i := range s.Samples {
		if _, ok := s.Samples[i].Values[c]; ok {
			if first < 0 {
				first = i
			}
			last = i
			d.Samples++
		}
	}
	if first < 0 {
		return d
	}
	d.First = s.Samples[first].Values[c]
	d.Last = s.Samples[last].Values[c]
	d.Source = s.Samples[last].Source(c)
	if first == last {
		return d
	}
	if d.Last < d.First {
		return d
	}
	d.Delta = d.Last - d.First
	d.OK = true
	d.Seconds = s.seconds(first, last)
	if d.Seconds > 0 {
		d.PerSecond = float64(d.Delta) / d.Seconds
	}
	return d
}

// Value returns counter c in the last sample that has it, and the member
// it was read from.
func (s *Snapshot) Value(c Counter) (int64, string, bool) {
	for i := len(s.Samples) - 1; i >= 0; i-- {
		if v, ok := s.Samples[i].Values[c]; ok {
			return v, s.Samples[i].Source(c), true
		}
	}
	return 0, "", false
}

// Intervals returns the per-interval increments of counter c between
// consecutive samples that both have it (negative values mean a reset).
func (s *Snapshot) Intervals(c Counter) []int64 {
	var out []int64
	prev, have := int64(0), false
	for i := range s.Samples {
		v, ok := s.Samples[i].Values[c]
		if !ok {
			continue
		}
		if have {
			out = append(out, v-prev)
		}
		prev, have = v, true
	}
	return out
}

// seconds is the time between samples i and j: the monotonic clock, else
// the wall clock, else the capture's configured interval.
func (s *Snapshot) seconds(i, j int) float64 {
	a, b := s.Samples[i].Time, s.Samples[j].Time
	if a != nil && b != nil {
		if a.MonotonicNS > 0 && b.MonotonicNS > a.MonotonicNS {
			return float64(b.MonotonicNS-a.MonotonicNS) / 1e9
		}
		ta, e1 := time.Parse(time.RFC3339Nano, a.Wall)
		tb, e2 := time.Parse(time.RFC3339Nano, b.Wall)
		if e1 == nil && e2 == nil && tb.After(ta) {
			return tb.Sub(ta).Seconds()
		}
	}
	if s.Manifest != nil && s.Manifest.Options.IntervalMS > 0 {
		return float64(s.Samples[j].Index-s.Samples[i].Index) * s.Manifest.Options.IntervalMS / 1000
	}
	return 0
}

// Window is the time covered by the samples, 0 when unknown.
func (s *Snapshot) Window() float64 {
	if len(s.Samples) < 2 {
		return 0
	}
	return s.seconds(0, len(s.Samples)-1)
}

// Counters lists every counter any sample has, by name: the data a
// browser of the bundle shows.
func (s *Snapshot) Counters() []Counter {
	seen := map[Counter]bool{}
	var out []Counter
	for i := range s.Samples {
		for c := range s.Samples[i].Values {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	slices.SortFunc(out, func(a, b Counter) int { return strings.Compare(a.name, b.name) })
	return out
}
