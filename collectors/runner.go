package collectors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/sys/unix"
)

// StopSignal is the cancel cause (context.WithCancelCause) of a capture
// stopped by a signal: the runner and the manifest then name the signal
// instead of blaming the deadline.
type StopSignal struct{ Signal syscall.Signal }

func (s StopSignal) Error() string { return unix.SignalName(s.Signal) + " received" }

// Name is the signal's name, "SIGTERM".
func (s StopSignal) Name() string { return unix.SignalName(s.Signal) }

// stopCause says what cut ctx short: the signal's name, or "deadline".
func stopCause(ctx context.Context) string {
	var sig StopSignal
	if errors.As(context.Cause(ctx), &sig) {
		return sig.Name()
	}
	return "deadline"
}

// Annotator is implemented by collectors that have facts for the manifest
// (the socket table's true total, the packet sample's drop count). The runner
// calls Annotate only for collectors that returned, never concurrently with
// Collect.
type Annotator interface {
	Annotate(m *bundle.Manifest)
}

// Runner runs the collectors of one capture: every Collector once, in its own
// goroutine, and every Sampler at each of Samples instants Interval apart,
// all under the context's deadline.
type Runner struct {
	Collectors []Collector
	Samplers   []Sampler
	Samples    int
	Interval   time.Duration
	// FirstSample is the index of the first sample this runner takes: earlier
	// indices hold the watchdog's history.
	FirstSample int
	// Grace is how long the runner waits, after the deadline, for collectors to
	// notice it and return what they have. A collector still running after it
	// is marked timeout and its unfinished members are left out of the bundle.
	Grace time.Duration
	// Progress, when set, is told about each collector as it ends.
	Progress func(bundle.CollectorStatus)
}

// result is one collector's outcome as the runner saw it.
type result struct {
	status bundle.CollectorStatus
	done   bool
	ann    Annotator
}

// Run runs everything and returns one status per collector and sampler, in
// the order they were given (collectors first), and whether the deadline cut
// anything.
func (r *Runner) Run(ctx context.Context, h Host, w *bundle.Writer) ([]bundle.CollectorStatus, []Annotator, bool) {
	grace := r.Grace
	if grace <= 0 {
		grace = 250 * time.Millisecond
	}
	var mu sync.Mutex
	results := make([]*result, len(r.Collectors)+len(r.Samplers))
	finished := make(chan int, len(results))

	for i, c := range r.Collectors {
		results[i] = &result{status: bundle.CollectorStatus{Name: c.Name()}}
		go func() {
			start := time.Now()
			err := safeCollect(ctx, c, h, w.For(c.Name()))
			mu.Lock()
			res := results[i]
			res.status.DurationMS = ms(time.Since(start))
			res.status.Status, res.status.Error = classify(ctx, err)
			res.done = true
			if a, ok := c.(Annotator); ok {
				res.ann = a
			}
			mu.Unlock()
			finished <- i
		}()
	}
	base := len(r.Collectors)
	for j, s := range r.Samplers {
		results[base+j] = &result{status: bundle.CollectorStatus{Name: s.Name()}}
	}
	samplesDone := make(chan struct{})
	var prog sampleProgress
	go func() {
		defer close(samplesDone)
		r.sampleLoop(ctx, h, w, results[base:], &mu, &prog)
	}()

	// Wait for everything, or for the deadline plus grace.
	var timeout <-chan time.Time
	// A done context stays ready: select on it once, then wait on the
	// grace timer alone, or the loop spins a CPU for the whole grace.
	done := ctx.Done()
	pending := len(r.Collectors)
	samplersPending := len(r.Samplers) > 0
	for pending > 0 || samplersPending {
		select {
		case i := <-finished:
			pending--
			if r.Progress != nil {
				mu.Lock()
				st := results[i].status
				mu.Unlock()
				r.Progress(st)
			}
		case <-samplesDone:
			samplersPending = false
			samplesDone = nil
			if r.Progress != nil {
				mu.Lock()
				for _, res := range results[base:] {
					r.Progress(res.status)
				}
				mu.Unlock()
			}
		case <-done:
			done = nil
			if timeout == nil {
				timeout = time.After(grace)
			}
		case <-timeout:
			pending, samplersPending = 0, false
		}
		if ctx.Err() != nil && timeout == nil {
			timeout = time.After(grace)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	cut := false
	out := make([]bundle.CollectorStatus, len(results))
	var anns []Annotator
	for i, res := range results {
		st := res.status
		if !res.done {
			st.Status = bundle.StatusTimeout
			switch {
			case st.Error != "":
			case i >= base && st.Name != prog.sampler:
				// The samplers share one loop: one that hangs stops the
				// others too, and they must not be blamed for it.
				st.Error = fmt.Sprintf("%s: took %d of %d samples; sampler %s did not return from sample %d",
					stopCause(ctx), prog.taken, max(r.Samples, 1), prog.sampler, prog.sample)
			case i >= base:
				st.Error = fmt.Sprintf("still running at the %s in sample %d; its unfinished files were left out", stopCause(ctx), prog.sample)
			default:
				st.Error = fmt.Sprintf("still running at the %s; its unfinished files were left out", stopCause(ctx))
			}
		}
		if st.Status == bundle.StatusTimeout {
			cut = true
		}
		st.Notes = w.Notes(st.Name)
		if st.Files = summarizeFiles(w.Files(st.Name)); res.done && res.ann != nil {
			anns = append(anns, res.ann)
		}
		out[i] = st
	}
	return out, anns, cut
}

// sampleProgress is where the sample loop is, for the statuses of samplers
// that a hung sampler kept from finishing. Guarded by the runner's mutex.
type sampleProgress struct {
	sampler string // the sampler running, or last run
	sample  int    // its sample index
	taken   int    // samples complete
}

// sampleLoop takes the counter samples: sample i starts at start+i*Interval.
func (r *Runner) sampleLoop(ctx context.Context, h Host, w *bundle.Writer, results []*result, mu *sync.Mutex, prog *sampleProgress) {
	n := max(r.Samples, 1)
	start := time.Now()
	taken := 0
	errs := make([][]string, len(r.Samplers))
	durations := make([]time.Duration, len(r.Samplers))
	statuses := make([]bundle.Status, len(r.Samplers))
	for i := range statuses {
		statuses[i] = bundle.StatusOK
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			wait := time.Until(start.Add(time.Duration(i) * r.Interval))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		idx := r.FirstSample + i
		if err := writeSampleTime(w.For("samples"), idx); err != nil && len(errs) > 0 {
			errs[0] = appendUnique(errs[0], err.Error())
		}
		for j, s := range r.Samplers {
			mu.Lock()
			prog.sampler, prog.sample = s.Name(), idx
			mu.Unlock()
			t0 := time.Now()
			err := safeSample(ctx, s, h, idx, w.For(s.Name()))
			durations[j] += time.Since(t0)
			if err != nil {
				st, msg := classify(ctx, err)
				if st == bundle.StatusAbsent && statuses[j] == bundle.StatusOK && i == 0 {
					statuses[j] = bundle.StatusAbsent
				} else if st != bundle.StatusAbsent {
					statuses[j] = worse(statuses[j], st)
				}
				errs[j] = appendUnique(errs[j], msg)
			}
		}
		taken++
		mu.Lock()
		prog.taken = taken
		mu.Unlock()
	}
	mu.Lock()
	defer mu.Unlock()
	for j, res := range results {
		st := &res.status
		st.DurationMS = ms(durations[j])
		st.Status = statuses[j]
		if taken < n {
			st.Status = bundle.StatusTimeout
			errs[j] = append(errs[j], fmt.Sprintf("%s: took %d of %d samples", stopCause(ctx), taken, n))
		}
		st.Error = strings.Join(errs[j], "; ")
		res.done = true
		if a, ok := r.Samplers[j].(Annotator); ok {
			res.ann = a
		}
	}
}

func writeSampleTime(w *bundle.Writer, i int) error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("read monotonic clock: %w", err)
	}
	now := time.Now().UTC()
	return w.WriteFile(bundle.SampleFile(i, bundle.SampleTimeFile), bundle.EncodeSampleTime(bundle.SampleTime{
		Index: i, MonotonicNS: ts.Nano(), Wall: now.Format(time.RFC3339Nano),
	}))
}

// classify turns a collector's error into its manifest status.
func classify(ctx context.Context, err error) (bundle.Status, string) {
	switch {
	case err == nil:
		return bundle.StatusOK, ""
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return bundle.StatusTimeout, err.Error()
	case errors.Is(err, fs.ErrNotExist):
		return bundle.StatusAbsent, err.Error()
	default:
		return bundle.StatusFailed, err.Error()
	}
}

func worse(a, b bundle.Status) bundle.Status {
	order := map[bundle.Status]int{bundle.StatusOK: 0, bundle.StatusAbsent: 1, bundle.StatusFailed: 2, bundle.StatusTimeout: 3}
	if order[b] > order[a] {
		return b
	}
	return a
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// safeCollect turns a collector's panic into its error: one broken collector
// must not cost the operator the whole bundle.
func safeCollect(ctx context.Context, c Collector, h Host, w *bundle.Writer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("collector %s panicked: %v", c.Name(), p)
		}
	}()
	return c.Collect(ctx, h, w)
}

func safeSample(ctx context.Context, s Sampler, h Host, i int, w *bundle.Writer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sampler %s panicked: %v", s.Name(), p)
		}
	}()
	return s.Sample(ctx, h, i, w)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// maxListedFiles bounds a collector's file list in the manifest; longer lists
// (a thousand sysctls, hundreds of samples) are folded into folders.
const maxListedFiles = 32

// summarizeFiles folds a long file list into "folder/* (N files)" entries at
// the deepest folder level that fits maxListedFiles.
func summarizeFiles(files []string) []string {
	if len(files) <= maxListedFiles {
		return files
	}
	for depth := 4; depth >= 1; depth-- {
		var out []string
		counts := map[string]int{}
		for _, f := range files {
			parts := strings.SplitN(f, "/", depth+1)
			key := f
			if len(parts) > depth {
				key = strings.Join(parts[:depth], "/") + "/*"
			}
			if counts[key] == 0 {
				out = append(out, key)
			}
			counts[key]++
		}
		if len(out) <= maxListedFiles || depth == 1 {
			for i, k := range out {
				if strings.HasSuffix(k, "/*") {
					out[i] = fmt.Sprintf("%s (%d files)", k, counts[k])
				}
			}
			return out
		}
	}
	return files
}
