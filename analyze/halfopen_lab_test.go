package analyze_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/lab"
)

// TestLabHalfOpenWithoutPort is the trial as a new user would make
// it: a SYN flood with cookies on, good clients connecting throughout, and
// a capture by the real binary with no --port. The good clients hold their
// connections open (no FIN of theirs in the sample) and the server closes
// them, so nothing but their final ACKs shows that their handshakes
// completed. The report must name the flooder, never the good client, and
// class the sources as a few recurring broken clients.
func TestLabHalfOpenWithoutPort(t *testing.T) {
	t.Parallel()
	l := lab.New(t, lab.Options{})
	bin := lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
	flood, err := lab.SYNFlood(l, lab.SYNFloodOpts{Syncookies: 1, Sustain: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Stop()

	// A good client every 250 ms, each connection held open: at most 24.
	var good []*lab.Conns // read once stopGood has returned
	stopGood := background(l, func(stop <-chan struct{}) error {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for range 24 {
			select {
			case <-stop:
				return nil
			case <-tick.C:
			}
			more, err := l.Connect(flood.Good, flood.Target, 1)
			if err != nil {
				return err
			}
			good = append(good, more)
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, err := l.Exec(ctx, l.Server, bin, "capture", "--out", t.TempDir(),
		"--samples", "3", "--interval", "1s", "--sample", "2s", "--reason", "lab: cookie flood, no --port")
	if serr := stopGood(); err == nil {
		err = serr
	}
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(o.Stdout)), "\n")
	path := lines[len(lines)-1]
	// The server accepts and closes: a good client whose handshake
	// completed is in CLOSE-WAIT (or still ESTABLISHED).
	established := 0
	for _, c := range good {
		for _, st := range []lab.TCPState{lab.StateEstablished, lab.StateCloseWait} {
			n, err := c.Count(st)
			if err != nil {
				t.Fatal(err)
			}
			established += n
		}
	}
	if established == 0 {
		t.Fatalf("none of %d good clients connected: the trial proves nothing", len(good))
	}

	s, r := loadAndAnalyze(t, path)
	if s.Manifest == nil || s.Manifest.Packets == nil || s.Manifest.Packets.Keeps == nil {
		t.Fatal("the manifest does not say what the packet filter kept")
	}
	keeps := s.Manifest.Packets.Keeps
	if len(keeps.Ports) != 0 || !slices.Contains(keeps.ListenPorts, int(flood.Target.Port())) {
		t.Errorf("keeps %+v: want no focus port and the listening port %d", keeps, flood.Target.Port())
	}

	pa := s.Packets
	if pa == nil {
		t.Fatal("no packet sample")
	}
	for _, st := range pa.Sources {
		switch st.Addr {
		case flood.Good:
			if st.HalfOpen != 0 || st.Undetermined != 0 || st.Completed == 0 {
				t.Errorf("good client %s: %d half-open, %d undetermined, %d completed; want every handshake completed",
					st.Addr, st.HalfOpen, st.Undetermined, st.Completed)
			}
		case flood.Bad:
			if st.HalfOpen == 0 {
				t.Errorf("flooder %s: no half-open handshake in %d flows", st.Addr, st.Flows)
			}
		}
	}

	f := only(t, r, analyze.IDHalfOpenClients)
	d := diagnosis[*analyze.HalfOpenClients](t, f)
	var named []string
	for _, src := range d.Sources {
		named = append(named, src.Addr)
	}
	if len(d.Sources) != 1 || d.Sources[0].Addr != flood.Bad.String() || d.Sources[0].HalfOpen == 0 {
		t.Errorf("half-open sources %v, want only the flooder %s", named, flood.Bad)
	}
	if d.Class != analyze.ClassBrokenClients || !d.FromPackets || d.Undetermined != 0 {
		t.Errorf("class %q (from packets %v, %d undetermined), want %q judged on the packets alone",
			d.Class, d.FromPackets, d.Undetermined, analyze.ClassBrokenClients)
	}
	if f.Listener != flood.Target.String() {
		t.Errorf("listener %q, want %s", f.Listener, flood.Target)
	}
	if t.Failed() {
		var b strings.Builder
		analyze.RenderText(&b, r, analyze.TextOptions{})
		t.Log(b.String())
	}
}
