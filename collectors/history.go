package collectors

import (
	"bytes"
	"context"
	"errors"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// HistorySample is one sample taken before the capture (by the watchdog, at
// its check interval), kept in memory until a capture writes it into the
// bundle as an earlier sample, so the report can say when trouble began.
type HistorySample struct {
	Time bundle.SampleTime
	// Files are keyed by their name inside the sample folder
	// (bundle.SampleNetstat, bundle.SampleListeners, ...).
	Files map[string][]byte
}

// Size is the bytes the sample holds, for bounding a history in memory.
func (s HistorySample) Size() int {
	n := 0
	for k, v := range s.Files {
		n += len(k) + len(v)
	}
	return n
}

// historySampleMax bounds one history sample; a host with thousands of
// listeners still fits.
const historySampleMax = 8 << 20

// TakeSample runs the samplers once into memory. The same sampler values must
// be passed each time, so their caches (listener owners) carry over.
func TakeSample(ctx context.Context, h Host, samplers []Sampler) (HistorySample, error) {
	w := bundle.NewMemWriter(historySampleMax)
	var errs []error
	if err := writeSampleTime(w, 0); err != nil {
		errs = append(errs, err)
	}
	for _, s := range samplers {
		if err := safeSample(ctx, s, h, 0, w.For(s.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	prefix := bundle.SampleDir(0) + "/"
	out := HistorySample{Files: map[string][]byte{}}
	for name, data := range w.Take() {
		rel, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		if rel == bundle.SampleTimeFile {
			t, err := bundle.DecodeSampleTime(bytes.NewReader(data))
			if err != nil {
				errs = append(errs, err)
			}
			out.Time = t
			continue
		}
		out.Files[rel] = data
	}
	return out, errors.Join(errs...)
}

// writeHistory stores earlier samples as samples 0..len(hist)-1.
func writeHistory(w *bundle.Writer, hist []HistorySample) error {
	var errs []error
	for i, hs := range hist {
		t := hs.Time
		t.Index = i
		if err := w.WriteFile(bundle.SampleFile(i, bundle.SampleTimeFile), bundle.EncodeSampleTime(t)); err != nil {
			errs = append(errs, err)
			continue
		}
		for name, data := range hs.Files {
			if !bundle.ValidName(name) {
				continue
			}
			if err := w.WriteFile(bundle.SampleFile(i, name), data); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
