package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
)

// Summary is what the fleet report needs of one bundle's analysis; it is
// what the cache holds, keyed by the bundle's SHA-256.
type Summary struct {
	Format int    `json:"format"`
	SHA256 string `json:"sha256"`
	// Host is the host name the manifest records.
	Host       string    `json:"host"`
	CapturedAt time.Time `json:"captured_at"`
	// Worst is the worst finding's severity; HasFindings is false when
	// there are none.
	Worst       analyze.Severity `json:"worst"`
	HasFindings bool             `json:"has_findings"`
	Findings    []FindingRef     `json:"findings"`
	// SynQueue is true when a SYN queue overflowed or half-open clients
	// could fill one (syn-queue-overflow, syncookies-active, or
	// half-open-clients at warning or above).
	SynQueue bool `json:"syn_queue"`
	// HalfOpen are the sources the half-open-clients finding names.
	HalfOpen []string `json:"half_open,omitempty"`
	// AcceptRate is Tcp.PassiveOpens per second over the capture; nil when
	// the bundle cannot tell (one sample).
	AcceptRate *float64 `json:"accept_rate,omitempty"`
}

// FindingRef is one finding of a bundle: what, how bad, where.
type FindingRef struct {
	ID       string           `json:"id"`
	Severity analyze.Severity `json:"severity"`
	Listener string           `json:"listener,omitempty"`
}

// Summarize reduces a report to its Summary.
func Summarize(r *analyze.Report, s *analyze.Snapshot, sum string) Summary {
	out := Summary{SHA256: sum, Host: r.Bundle.Host, Findings: []FindingRef{}}
	if t, err := time.Parse(time.RFC3339, r.Bundle.CapturedAt); err == nil {
		out.CapturedAt = t.UTC()
	}
	out.Worst, out.HasFindings = r.Worst()
	for _, f := range r.Findings {
		out.Findings = append(out.Findings, FindingRef{ID: f.ID, Severity: f.Severity, Listener: f.Listener})
		switch f.ID {
		case analyze.IDSynQueueOverflow, analyze.IDSyncookiesActive:
			out.SynQueue = out.SynQueue || f.Severity >= analyze.Warning
		case analyze.IDHalfOpenClients:
			out.SynQueue = out.SynQueue || f.Severity >= analyze.Warning
			if d, ok := f.Diagnosis.(*analyze.HalfOpenClients); ok {
				for _, src := range d.Sources {
					out.HalfOpen = append(out.HalfOpen, src.Addr)
				}
			}
		}
	}
	if rate, ok := s.AcceptRate(); ok {
		out.AcceptRate = &rate
	}
	return out
}

// Stats count what a run did; a warm run over an unchanged fleet has
// Analyzed == 0.
type Stats struct {
	Listed   int
	Cached   int
	Analyzed int
	Failed   int
	// Headed counts checksums asked of the store (S3 HEAD requests).
	Headed int
}

// Result is one listed bundle with its summary, or why there is none.
type Result struct {
	Object  Object
	Summary Summary
	Err     error
}

// Options configure Run.
type Options struct {
	Cache Cache
	// Jobs bounds the bundles read and analyzed at once (0: the CPUs + 1).
	Jobs int
	// TempDir receives each bundle while it is analyzed ("" is the
	// system's).
	TempDir string
}

// Run lists src and summarizes every bundle: from the cache when its
// checksum is known there, else by streaming it to a temporary file
// (bounded by bundle.DefaultLimits' total), checking its SHA-256 against
// the store's, and analyzing it. Results are in listing order.
func Run(ctx context.Context, src Source, o Options) ([]Result, Stats, error) {
	objs, err := src.List(ctx)
	if err != nil {
		return nil, Stats{}, err
	}
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0) + 1
	}
	results := make([]Result, len(objs))
	var mu sync.Mutex
	st := Stats{Listed: len(objs)}
	count := func(f func(*Stats)) { mu.Lock(); f(&st); mu.Unlock() }
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(jobs, max(len(objs), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results[i] = one(ctx, src, o, objs[i], count)
			}
		}()
	}
	for i := range objs {
		work <- i
	}
	close(work)
	wg.Wait()
	return results, st, nil
}

func one(ctx context.Context, src Source, o Options, obj Object, count func(func(*Stats))) Result {
	res := Result{Object: obj}
	sum := NormalizeSum(obj.SHA256)
	if sum == "" {
		sum = o.Cache.Ref(obj)
	}
	if sum == "" {
		count(func(s *Stats) { s.Headed++ })
		var err error
		if sum, err = src.Checksum(ctx, obj); err != nil {
			count(func(s *Stats) { s.Failed++ })
			res.Err = err
			return res
		}
	}
	if sum != "" {
		if s, ok := o.Cache.Summary(sum); ok {
			count(func(s *Stats) { s.Cached++ })
			res.Summary = s
			_ = o.Cache.PutRef(obj, sum)
			return res
		}
	}
	s, err := analyzeObject(ctx, src, o, obj, sum)
	if err != nil {
		count(func(s *Stats) { s.Failed++ })
		res.Err = fmt.Errorf("%s: %w", obj.Key, err)
		return res
	}
	count(func(s *Stats) { s.Analyzed++ })
	res.Summary = s
	// A cache that cannot be written costs the next run time, not this
	// one its answer.
	_ = o.Cache.PutSummary(s)
	_ = o.Cache.PutRef(obj, s.SHA256)
	return res
}

// errChecksum is wrapped when a bundle's bytes do not match the checksum
// its store recorded.
var errChecksum = errors.New("checksum mismatch")

func analyzeObject(ctx context.Context, src Source, o Options, obj Object, want string) (Summary, error) {
	limit := bundle.DefaultLimits().MaxTotal
	if obj.Size > limit {
		return Summary{}, fmt.Errorf("%d bytes, more than the %d a bundle may hold", obj.Size, limit)
	}
	rc, err := src.Open(ctx, obj)
	if err != nil {
		return Summary{}, err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(o.TempDir, "snapdiag-fleet-*"+BundleSuffix)
	if err != nil {
		return Summary{}, fmt.Errorf("temporary file: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(rc, limit+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Summary{}, fmt.Errorf("read: %w", err)
	}
	if n > limit {
		return Summary{}, fmt.Errorf("more than the %d bytes a bundle may hold", limit)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return Summary{}, fmt.Errorf("%w: store says %s, bytes are %s", errChecksum, want, got)
	}
	snap, err := analyze.LoadPath(tmp.Name())
	if err != nil {
		return Summary{}, err
	}
	r := analyze.Analyze(snap, obj.Key, analyze.Rules())
	return Summarize(r, snap, got), nil
}
