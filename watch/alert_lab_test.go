package watch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
)

// TestLabAlertmanagerTrigger is the live path end to end, on real parts: a
// SYN flood in a lab namespace fills a listener's SYN queue; snapdiag watch
// (no --check: metrics and the webhook only) shows it on /metrics; a real
// Prometheus scrapes the watch every second and fires the shipped
// SnapdiagSynQueueNearLimit rule; a real Alertmanager sends it to the
// watch's webhook; the watch writes a bundle whose trigger is that alert,
// and analyze finds on that listener what the rule's runbook says it will.
// Everything runs in the lab's server namespace, on its loopback.
func TestLabAlertmanagerTrigger(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (Debian package prometheus; .ci/run installs it)")
	}
	am, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		t.Skip("alertmanager not installed (Debian package prometheus-alertmanager; .ci/run installs it)")
	}
	l := lab.New(t, lab.Options{})
	bin := testutil.Snapdiag(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ln, err := l.FloodListener(8080)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs(filepath.Join("..", "deploy", "prometheus", "snapdiag.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}

	// The namespace is the test's own: fixed loopback ports are free.
	const (
		watchAddr = "127.0.0.1:9917"
		promAddr  = "127.0.0.1:9090"
		amAddr    = "127.0.0.1:9093"
	)
	dir, work := t.TempDir(), t.TempDir()
	w, err := l.Start(ctx, l.Server, bin, "watch",
		"--metrics", watchAddr, "--webhook", watchAddr,
		"--webhook-match", `alertname="SnapdiagSynQueueNearLimit",port="8080"`,
		"--every", "1s", "--history", "1m", "--cooldown", "10m",
		"--port", "8080", "--samples", "2", "--interval", "500ms", "--sample", "1s", "--deadline", "8s",
		"--out", dir, "--min-free", "0", "--log-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("watch log:\n%s", w.Stderr())
		}
	}()

	amConfig := filepath.Join(work, "alertmanager.yml")
	writeFile(t, amConfig, fmt.Sprintf(`route:
  receiver: snapdiag
  group_by: [alertname, listener]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: snapdiag
    webhook_configs:
      - url: http://%s%s
        send_resolved: false
`, watchAddr, WebhookPath))
	a, err := l.Start(ctx, l.Server, am, "--config.file", amConfig, "--storage.path", filepath.Join(work, "am"),
		"--web.listen-address", amAddr, "--cluster.listen-address", "")
	if err != nil {
		t.Fatal(err)
	}
	promConfig := filepath.Join(work, "prometheus.yml")
	writeFile(t, promConfig, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: snapdiag
    static_configs:
      - targets: [%q]
`, rules, amAddr, watchAddr))
	p, err := l.Start(ctx, l.Server, prom, "--config.file", promConfig, "--storage.tsdb.path", filepath.Join(work, "tsdb"),
		"--web.listen-address", promAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("prometheus log:\n%s\nalertmanager log:\n%s", tail(p.Stderr()), tail(a.Stderr()))
		}
	}()

	flood, err := l.FloodSYNs(ctx, lab.RateFloodOpts{Target: ln.Addr, Rate: lab.DefaultFloodRate, Duration: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Stop()

	waitLog(t, w, "bundle written", 1, 75*time.Second)
	path := strings.TrimSpace(strings.Split(w.Stdout(), "\n")[0])
	man := manifestOf(t, testutil.ReadBundle(t, path))
	al := man.Trigger.Alert
	if al == nil {
		t.Fatalf("trigger %+v: no alert", man.Trigger)
	}
	if al.Name != "SnapdiagSynQueueNearLimit" || al.Labels["port"] != "8080" || al.Labels["job"] != "snapdiag" ||
		al.Labels["listener"] != ln.Addr.String() || al.Annotations["runbook"] == "" {
		t.Errorf("trigger alert %+v", al)
	}
	// The runbook's promise: analyze names the flooded listener.
	s, err := analyze.LoadBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	r := analyze.Analyze(s, path, analyze.Rules())
	var ids []string
	found := false
	for _, f := range r.Findings {
		ids = append(ids, f.ID+" "+f.Listener)
		found = found || (f.ID == analyze.IDSyncookiesActive || f.ID == analyze.IDSynQueueOverflow) && f.Listener == ln.Addr.String()
	}
	if !found {
		t.Errorf("findings %v: none of syncookies-active, syn-queue-overflow on %s", ids, ln.Addr)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tail is the end of a long log.
func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
