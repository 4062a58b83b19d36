package analyze_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"github.com/snapdiag/snapdiag/schema"
)

// TestLabDiffBeforeAfterFix captures the same incident twice with the real
// binary, in labs of the same address plan so the listener is the same
// ADDR:PORT: before, a SYN flood on a listener of backlog 16 with cookies
// off; after, the fix applied (cookies on, backlog 128). The diff shows
// tcp_syncookies 0 -> 1, the backlog 16 -> 128, ListenDrops' rate falling
// and the critical SYN-queue overflow gone.
func TestLabDiffBeforeAfterFix(t *testing.T) {
	bin := lab.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag")
	const net = 47
	capture := func(o lab.SYNFloodOpts, reason string) string {
		l := lab.New(t, lab.Options{Net: net})
		// Closed here, not at the test's end: the second lab takes the
		// same address plan, which one process's labs cannot share.
		defer func() {
			if err := l.Close(); err != nil {
				t.Error(err)
			}
		}()
		o.Sustain = 6 * time.Second
		f, err := lab.SYNFlood(l, o)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Stop()
		p, err := captureIn(l, bin, t.TempDir(), "8080", 3, reason)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	before := capture(lab.SYNFloodOpts{Syncookies: 0, Backlog: 16}, "lab: before the fix")
	after := capture(lab.SYNFloodOpts{Syncookies: 1, Backlog: 128}, "lab: after the fix")
	a, err := analyze.LoadPath(before)
	if err != nil {
		t.Fatal(err)
	}
	b, err := analyze.LoadPath(after)
	if err != nil {
		t.Fatal(err)
	}
	d := analyze.Compare(a, before, b, after, analyze.Rules())
	var js, txt bytes.Buffer
	if err := analyze.RenderDiffJSON(&js, d); err != nil {
		t.Fatal(err)
	}
	testutil.ValidateJSON(t, schema.Diff, js.Bytes())
	if err := analyze.RenderDiffText(&txt, d, analyze.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(txt.String())
		}
	})

	if len(d.Sysctls) == 0 || d.Sysctls[0].Key != "net.ipv4.tcp_syncookies" || d.Sysctls[0].A == nil || *d.Sysctls[0].A != "0" ||
		d.Sysctls[0].B == nil || *d.Sysctls[0].B != "1" {
		t.Errorf("sysctls %+v: want tcp_syncookies 0 -> 1 first", d.Sysctls)
	}
	listener := "10.211.47.1:8080"
	var lc *analyze.ListenerChange
	for i := range d.Listeners {
		if d.Listeners[i].Listener == listener {
			lc = &d.Listeners[i]
		}
	}
	if lc == nil || lc.A == nil || lc.B == nil || lc.A.Backlog != 16 || lc.B.Backlog != 128 {
		t.Errorf("listener %s: %+v, want backlog 16 -> 128 in both", listener, lc)
	}
	var drops *analyze.CounterRate
	for i := range d.Counters {
		if d.Counters[i].Counter == "TcpExt.ListenDrops" {
			drops = &d.Counters[i]
		}
	}
	if drops == nil || drops.A == nil || drops.B == nil || *drops.A <= 0 || *drops.B >= *drops.A || drops.Ratio == nil || *drops.Ratio >= 1 {
		t.Errorf("TcpExt.ListenDrops %+v: want a rate that fell", drops)
	}
	gone := false
	for _, f := range d.Findings {
		if f.ID == analyze.IDSynQueueOverflow && f.Listener == listener {
			gone = f.Change == analyze.FindingGone && f.Severity == analyze.Critical
		}
	}
	if !gone {
		t.Errorf("findings %+v: want the critical syn-queue-overflow on %s gone", d.Findings, listener)
	}
}
