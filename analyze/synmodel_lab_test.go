package analyze_test

import (
	"context"
	"testing"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/lab"
)

// TestLabBacklogClampedBySomaxconn: an application asks listen() for 1024
// under net.core.somaxconn 64, so the kernel gives it 64 (Send-Q). Flooded
// with cookies off, the real binary's report must say somaxconn is the
// limit in force and recommend raising it, and the application's backlog
// (key listen.backlog); raising somaxconn alone changes nothing until the
// listener calls listen() again, which then takes the recommended backlog.
func TestLabBacklogClampedBySomaxconn(t *testing.T) {
	t.Parallel()
	l, bin := closedLoopLab(t)
	if err := l.Sysctl(l.Server, "net.core.somaxconn", "64"); err != nil {
		t.Fatal(err)
	}
	flood, err := lab.SYNFlood(l, lab.SYNFloodOpts{Syncookies: 0, Backlog: 1024, BadClients: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := sendQ(t, l, flood.Target.Port()); got != 64 {
		t.Fatalf("listen(1024) under somaxconn 64: Send-Q %d, want 64", got)
	}
	path, f := floodFinding(t, l, bin, flood, "somaxconn clamps the backlog")
	s, err := analyze.LoadPath(path)
	if err != nil {
		t.Fatal(err)
	}
	d := diagnosis[*analyze.SynQueueDrop](t, only(t, analyze.Analyze(s, path, analyze.Rules()), analyze.IDSynQueueOverflow))
	if a := d.Backlog; a.Limit != analyze.LimitSomaxconn || a.Somaxconn != 64 || !a.RaiseSomaxconn || a.Listener == nil || a.Listener.SendQ != 64 {
		t.Errorf("backlog advice %+v: want somaxconn 64 named as the limit in force, raised", a)
	}
	var somax, backlog string
	for _, r := range f.Recommendations {
		if r.Plan != "" {
			continue
		}
		switch r.Key {
		case "net.core.somaxconn":
			somax = r.Value
			if r.Current != "64" {
				t.Errorf("somaxconn recommendation: current %q, want 64", r.Current)
			}
		case analyze.KeyListenBacklog:
			backlog = r.Value
			if r.Current != "64" {
				t.Errorf("listen.backlog recommendation: current %q, want 64", r.Current)
			}
		}
	}
	t.Logf("Send-Q 64 under somaxconn 64 (asked 1024); recommended somaxconn %s, listen.backlog %s", somax, backlog)
	if somax == "" || backlog == "" || atoi(somax) < atoi(backlog) || atoi(backlog) <= 64 {
		t.Fatalf("recommendations somaxconn %q, listen.backlog %q: want both, somaxconn admitting the backlog, above 64", somax, backlog)
	}

	// The remedy's two halves: somaxconn alone does not reach a socket
	// already listening; the re-listen does.
	if err := l.Sysctl(l.Server, "net.core.somaxconn", somax); err != nil {
		t.Fatal(err)
	}
	if got := sendQ(t, l, flood.Target.Port()); got != 64 {
		t.Errorf("somaxconn raised, no re-listen: Send-Q %d, want still 64", got)
	}
	if err := l.Relisten(flood.Listener, atoi(backlog)); err != nil {
		t.Fatal(err)
	}
	if got := sendQ(t, l, flood.Target.Port()); got != uint32(atoi(backlog)) {
		t.Errorf("after the re-listen: Send-Q %d, want the recommended %s", got, backlog)
	}
}

// sendQ is the server's listener's Send-Q (its backlog in force) on port,
// as ss shows it.
func sendQ(t *testing.T, l *lab.Lab, port uint16) uint32 {
	t.Helper()
	ss, err := l.SS(context.Background(), l.Server)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ss.Listener(int(port))
	if !ok {
		t.Fatalf("no listener on port %d", port)
	}
	return got.SendQ
}
