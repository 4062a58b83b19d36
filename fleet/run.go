package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
// what the cache holds, keyed by the SHA-256 of the bundle's bytes as they
// were read, never by a checksum a store claims.
type Summary struct {
	Format int    `json:"format"`
	SHA256 string `json:"sha256"`
	// Host is the host name the manifest records. A summary belongs to
	// content, not to a key: two keys holding the same bytes share it, and
	// each is shown under its own key's host (Result.Host).
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
	// Packets is what the bundle's packet sample can say of half-open
	// clients: without a sample that judged the handshakes, a SYN-queue
	// incident that names no source is no evidence that there was none.
	Packets PacketEvidence `json:"packets"`
	// AcceptRate is Tcp.PassiveOpens per second over all the bundle's
	// samples; nil when the bundle cannot tell (one sample).
	AcceptRate *float64 `json:"accept_rate,omitempty"`
	// HistorySamples is how many of the bundle's first samples the
	// watchdog took before the capture; HistoryAcceptRate is the accepted
	// connections per second over them (nil without two).
	HistorySamples    int      `json:"history_samples,omitempty"`
	HistoryAcceptRate *float64 `json:"history_accept_rate,omitempty"`
	// Hours is the load the bundle's samples saw in each UTC clock hour,
	// watch history included, oldest first (at most MaxHours).
	Hours []HourAccepts `json:"hours,omitempty"`
}

// PacketEvidence is what a bundle's packet sample can say of half-open
// clients.
type PacketEvidence string

// The packet evidences.
const (
	// PacketsAbsent: the bundle has no packet sample.
	PacketsAbsent PacketEvidence = "absent"
	// PacketsCannotTell: the sample could not judge the handshakes (its
	// filter missed the clients' ACKs, or the capture socket lost
	// packets) and found none half-open.
	PacketsCannotTell PacketEvidence = "cannot-tell"
	// PacketsJudged: the sample judged the handshakes it saw.
	PacketsJudged PacketEvidence = "judged"
)

// HourAccepts is the handshakes a bundle's samples saw completed within
// one UTC clock hour.
type HourAccepts struct {
	// Hour is the hour's start.
	Hour     time.Time `json:"hour"`
	Seconds  float64   `json:"seconds"`
	Accepted int64     `json:"accepted"`
}

// MaxHours bounds Summary.Hours: of a watch history longer than two days,
// the latest hours are kept.
const MaxHours = 48

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
	out.Packets = packetEvidence(s)
	if s.Manifest != nil {
		out.HistorySamples = s.Manifest.Options.History
	}
	out.HistoryAcceptRate, out.Hours = hourly(s.AcceptIntervals())
	return out
}

func packetEvidence(s *analyze.Snapshot) PacketEvidence {
	switch pa := s.Packets; {
	case pa == nil:
		return PacketsAbsent
	case pa.HalfOpen == 0 && pa.Undetermined > 0:
		return PacketsCannotTell
	default:
		return PacketsJudged
	}
}

// hourly is the accepted rate over the history intervals (nil without
// one), and the intervals summed per UTC hour of their start.
func hourly(ivs []analyze.AcceptInterval) (*float64, []HourAccepts) {
	var histN int64
	var histS float64
	var hours []HourAccepts
	for _, iv := range ivs {
		if iv.History {
			histN += iv.Accepted
			histS += iv.Seconds
		}
		h := iv.Start.Truncate(time.Hour)
		if n := len(hours); n > 0 && hours[n-1].Hour.Equal(h) {
			hours[n-1].Seconds += iv.Seconds
			hours[n-1].Accepted += iv.Accepted
			continue
		}
		hours = append(hours, HourAccepts{Hour: h, Seconds: iv.Seconds, Accepted: iv.Accepted})
	}
	if len(hours) > MaxHours {
		hours = hours[len(hours)-MaxHours:]
	}
	if histS <= 0 {
		return nil, hours
	}
	r := round2(float64(histN) / histS)
	return &r, hours
}

// Stats count what a run did; a warm run over an unchanged fleet has
// Analyzed == 0 and Downloaded == 0.
type Stats struct {
	Listed int
	// Cached counts the bundles whose summary came from the cache, read
	// or not (a new key holding known bytes is read once, to know them).
	Cached   int
	Analyzed int
	// Downloaded counts the bundles read from the store.
	Downloaded int
	// Failed counts the bundles that could not be read or analyzed;
	// Corrupt those of them whose bytes do not match the checksum their
	// store claims (ChecksumError).
	Failed  int
	Corrupt int
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

// Run lists src and summarizes every bundle. An object whose identity
// (key, size, version and listed checksum: what changes when it is
// replaced) was recorded after a verified read comes from the cache
// unread. Any other is streamed to a temporary file (bounded by
// bundle.DefaultLimits' total) and hashed; a checksum its store claims
// must match the hash, and its summary is the cache's for that hash or a
// fresh analysis. Results are in listing order.
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
	// Only a ref written after this identity's bytes were hashed stands
	// for them: a checksum the store claims is checked against the bytes,
	// never used to look a summary up.
	if sum := o.Cache.Ref(obj); sum != "" {
		if s, ok := o.Cache.Summary(sum); ok {
			count(func(s *Stats) { s.Cached++ })
			res.Summary = s
			return res
		}
	}
	fail := func(err error) Result {
		corrupt := failKind(err) == FailChecksum
		count(func(s *Stats) {
			s.Failed++
			if corrupt {
				s.Corrupt++
			}
		})
		res.Err = fmt.Errorf("%s: %w", obj.Key, err)
		return res
	}
	claimed := NormalizeSum(obj.SHA256)
	if claimed == "" {
		count(func(s *Stats) { s.Headed++ })
		var err error
		if claimed, err = src.Checksum(ctx, obj); err != nil {
			return fail(fmt.Errorf("checksum: %w", err))
		}
	}
	count(func(s *Stats) { s.Downloaded++ })
	s, cached, err := readObject(ctx, src, o, obj, NormalizeSum(claimed))
	if err != nil {
		return fail(err)
	}
	if cached {
		count(func(s *Stats) { s.Cached++ })
	} else {
		count(func(s *Stats) { s.Analyzed++ })
		// A cache that cannot be written costs the next run time, not
		// this one its answer.
		_ = o.Cache.PutSummary(s)
	}
	_ = o.Cache.PutRef(obj, s.SHA256)
	res.Summary = s
	return res
}

// ChecksumError is a bundle whose bytes do not hash to the SHA-256 its
// store claims (object metadata, a KEY.sha256 sidecar): replaced, damaged
// or mislabeled on the way. It is a bundle.ErrCorrupt: the bundle is
// reported as failed, never analyzed or looked up under a checksum that is
// not its own.
type ChecksumError struct {
	Claimed, Computed string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("checksum mismatch: the store says %s, the bytes are %s", e.Claimed, e.Computed)
}

// Is makes a ChecksumError a bundle.ErrCorrupt.
func (e *ChecksumError) Is(target error) bool { return target == bundle.ErrCorrupt }

// readObject streams obj to a temporary file while hashing it, checks the
// hash against claimed ("" when the store claims none), and returns the
// cache's summary for that hash (cached) or the file's fresh analysis.
func readObject(ctx context.Context, src Source, o Options, obj Object, claimed string) (_ Summary, cached bool, _ error) {
	limit := bundle.DefaultLimits().MaxTotal
	if obj.Size > limit {
		return Summary{}, false, fmt.Errorf("%d bytes, more than the %d a bundle may hold", obj.Size, limit)
	}
	rc, err := src.Open(ctx, obj)
	if err != nil {
		return Summary{}, false, err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(o.TempDir, "snapdiag-fleet-*"+BundleSuffix)
	if err != nil {
		return Summary{}, false, fmt.Errorf("temporary file: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(rc, limit+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Summary{}, false, fmt.Errorf("read: %w", err)
	}
	if n > limit {
		return Summary{}, false, fmt.Errorf("more than the %d bytes a bundle may hold", limit)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if claimed != "" && got != claimed {
		return Summary{}, false, &ChecksumError{Claimed: claimed, Computed: got}
	}
	if s, ok := o.Cache.Summary(got); ok {
		return s, true, nil
	}
	snap, err := analyze.LoadPath(tmp.Name())
	if err != nil {
		return Summary{}, false, err
	}
	r := analyze.Analyze(snap, obj.Key, analyze.Rules())
	return Summarize(r, snap, got), false, nil
}
