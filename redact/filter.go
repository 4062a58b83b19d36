package redact

import (
	"encoding/binary"
	"io"
	"sync"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// Filter returns a bundle.Filter that redacts a bundle as it is written, as
// Bundle would redact it afterwards: capture --redact writes through it, so
// no unredacted byte ever reaches the disk, not even the staging folder of
// a capture killed mid-way. names are the host's names, known before the
// capture starts (its host name and kernel node name); machine is the
// uname machine, for the byte order of /proc/net's hex addresses.
func (r *Redactor) Filter(names []string, machine string) bundle.Filter {
	return &filter{r: r, names: names, order: byteOrder(machine)}
}

// filter is a Redactor's bundle.Filter. Members are written from several
// goroutines at once; each is redacted with its own mapper (the mapping is
// a keyed function, so every mapper gives the same pseudonyms), and only
// the statistics are shared.
type filter struct {
	r     *Redactor
	names []string
	order binary.ByteOrder

	mu    sync.Mutex
	pcap  PcapStats
	spent time.Duration
}

func (f *filter) job(host string) *job {
	r := &Redactor{key: f.r.key, m: newMapper(f.r.key)}
	j := &job{r: r, order: f.order}
	j.text = textScanner{m: r.m, names: hostNames(append([]string{host}, f.names...)...)}
	j.scrub = pathScrubber("", host, r.m.Host(host))
	return j
}

// Member redacts member name on its way to dst: a goroutine reads what is
// written through a pipe and writes the redacted bytes to dst.
func (f *filter) Member(name string, dst io.Writer) io.WriteCloser {
	k := kindOf(name)
	if k == kindCopy {
		return nopCloser{dst}
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		start := time.Now()
		j := f.job("")
		st, err := j.redact(k, pr, dst)
		if err == nil {
			// Whatever the redactor did not read (nothing, for a member it
			// reads to its end) is dropped, never written unredacted.
			_, err = io.Copy(io.Discard, pr)
		}
		pr.CloseWithError(err) // a writer still writing gets the error
		f.mu.Lock()
		f.pcap.Packets += st.Packets
		f.pcap.Truncated += st.Truncated
		f.pcap.Dropped += st.Dropped
		f.spent += time.Since(start)
		f.mu.Unlock()
		done <- err
	}()
	return &pipeMember{pw: pw, done: done}
}

// Commit redacts the manifest as Bundle does, and names the bundle with
// the host's pseudonym.
func (f *filter) Commit(_ string, m *bundle.Manifest) (string, *bundle.Manifest, error) {
	f.mu.Lock()
	pcap, spent := f.pcap, f.spent
	f.mu.Unlock()
	rm, err := f.job(m.Host.Hostname).finish(m, pcap, nil, spent)
	if err != nil {
		return "", nil, err
	}
	return f.r.FileName(m), rm, nil
}

// pipeMember is the writing end of a member being redacted.
type pipeMember struct {
	pw   *io.PipeWriter
	done chan error
	once sync.Once
	err  error
}

func (p *pipeMember) Write(b []byte) (int, error) { return p.pw.Write(b) }

// Close ends the member and waits for its redaction to finish.
func (p *pipeMember) Close() error {
	p.once.Do(func() {
		p.pw.Close()
		p.err = <-p.done
	})
	return p.err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
