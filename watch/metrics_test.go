package watch

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/ship"
)

func TestCounterMetric(t *testing.T) {
	got := map[string]string{}
	for _, c := range analyze.LiveCounters() {
		got[c.String()] = counterMetric(c)
	}
	want := map[string]string{
		"TcpExt.ListenOverflows":      "tcpext_listen_overflows",
		"TcpExt.ListenDrops":          "tcpext_listen_drops",
		"TcpExt.TCPReqQFullDrop":      "tcpext_tcp_req_q_full_drop",
		"TcpExt.TCPReqQFullDoCookies": "tcpext_tcp_req_q_full_do_cookies",
		"TcpExt.SyncookiesSent":       "tcpext_syncookies_sent",
		"TcpExt.SyncookiesRecv":       "tcpext_syncookies_recv",
		"TcpExt.SyncookiesFailed":     "tcpext_syncookies_failed",
		"TcpExt.TCPTimeWaitOverflow":  "tcpext_tcp_time_wait_overflow",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("metric names (-want +got):\n%s", d)
	}
}

// series is one gathered sample: its labels and value.
type series struct {
	labels map[string]string
	value  float64
}

// gather returns the page's series by metric name.
func gather(t testing.TB, m *Metrics) map[string][]series {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string][]series{}
	for _, mf := range mfs {
		for _, x := range mf.GetMetric() {
			s := series{labels: map[string]string{}}
			for _, lp := range x.GetLabel() {
				s.labels[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				s.value = x.GetCounter().GetValue()
			default:
				s.value = x.GetGauge().GetValue()
			}
			out[mf.GetName()] = append(out[mf.GetName()], s)
		}
	}
	return out
}

func one(t testing.TB, page map[string][]series, name string, labels map[string]string) float64 {
	t.Helper()
	var found []float64
	for _, s := range page[name] {
		ok := true
		for k, v := range labels {
			ok = ok && s.labels[k] == v
		}
		if ok {
			found = append(found, s.value)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, labels, len(found))
	}
	return found[0]
}

// sampleWithQueue opens a listener with backlog 4 holding three
// connections nobody accepted, and takes a real sample of this host.
func sampleWithQueue(t *testing.T) (collectors.HistorySample, int, *Metrics) {
	t.Helper()
	_, port := testutil.Listen(t, netip.MustParseAddrPort("127.0.0.1:0"), 4)
	for range 3 {
		testutil.Dial(t, "tcp4", netip.MustParseAddr("127.0.0.1"), port)
	}
	h := collectors.DefaultHost()
	_, samplers := collectors.DefaultSet(h)
	s, err := collectors.TakeSample(context.Background(), h, samplers)
	if err != nil {
		t.Logf("sample: %v", err)
	}
	m := NewMetrics(MetricsConfig{Version: "v9.9.9"})
	m.setKernel(collectors.HostFacts(h).KernelRelease)
	m.observeSample(s, nil, collectors.ReadSysctls(h, analyze.ListenSysctls()))
	return s, port, m
}

// TestMetricsFromSample: the page shows a real listener's queue as the
// kernel reported it, the host counters as /proc/net/netstat has them, and
// the sysctls as /proc/sys has them.
func TestMetricsFromSample(t *testing.T) {
	s, port, m := sampleWithQueue(t)
	page := gather(t, m)
	l := map[string]string{"listener": "127.0.0.1:" + strconv.Itoa(port), "port": strconv.Itoa(port)}
	if got := one(t, page, "snapdiag_listener_accept_queue", l); got != 3 {
		t.Errorf("accept queue %v, want 3", got)
	}
	if got := one(t, page, "snapdiag_listener_accept_queue_limit", l); got != 4 {
		t.Errorf("accept queue limit %v, want 4", got)
	}
	if got := one(t, page, "snapdiag_listener_syn_queue_limit", l); got < 4 {
		t.Errorf("SYN queue limit %v, want at least the backlog 4", got)
	}
	for _, c := range []string{"ListenOverflows", "ListenDrops", "SyncookiesSent"} {
		want := netstatValue(t, s.Files[bundle.SampleNetstat], "TcpExt."+c)
		if got := one(t, page, "snapdiag_"+counterMetric(analyze.ParseCounter("TcpExt."+c))+"_total", nil); got != float64(want) {
			t.Errorf("TcpExt.%s: %v, want %d", c, got, want)
		}
	}
	raw, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	if got := one(t, page, "snapdiag_sysctl", map[string]string{"name": "net.core.somaxconn"}); got != float64(want) {
		t.Errorf("somaxconn %v, want %d", got, want)
	}
	if got := one(t, page, "snapdiag_build_info", map[string]string{"version": "v9.9.9"}); got != 1 {
		t.Errorf("build info %v", got)
	}
	if got := one(t, page, "snapdiag_listeners_omitted", nil); got != 0 {
		t.Errorf("omitted %v, want 0 under the default bound", got)
	}
}

// TestMetricsListenerBound: with --metrics-listeners N the page holds the N
// fullest listeners and counts the others.
func TestMetricsListenerBound(t *testing.T) {
	s, _, _ := sampleWithQueue(t)
	parsed, _ := analyze.ParseSample(s.Files)
	total := len(parsed.Listeners)
	if total < 2 {
		t.Fatalf("%d listeners on the host, want at least 2", total)
	}
	m := NewMetrics(MetricsConfig{MaxListeners: 1})
	m.observeSample(s, nil, nil)
	page := gather(t, m)
	if got := one(t, page, "snapdiag_listeners", nil); got != float64(total) {
		t.Errorf("listeners %v, want %d", got, total)
	}
	if got := one(t, page, "snapdiag_listeners_omitted", nil); got != float64(total-1) {
		t.Errorf("omitted %v, want %d", got, total-1)
	}
	kept := page["snapdiag_listener_accept_queue"]
	if len(kept) != 1 {
		t.Fatalf("%d listeners on the page, want 1", len(kept))
	}
	// Ours is 3/4 full; the one kept is at least as full.
	limit := one(t, page, "snapdiag_listener_accept_queue_limit", nil)
	if kept[0].value/max(limit, 1) < 0.75 {
		t.Errorf("kept %v with %v of %v, not the fullest", kept[0].labels, kept[0].value, limit)
	}
}

// scrape serves m as watch --metrics does and returns the page.
func scrape(t testing.TB, m *Metrics) []byte {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return body
}

// promtool returns the path of Prometheus's promtool, or skips.
func promtool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
	}
	return p
}

// TestPromtoolCheckMetrics: a real scrape passes promtool check metrics,
// Prometheus's own lint of names, units, types and help.
func TestPromtoolCheckMetrics(t *testing.T) {
	tool := promtool(t)
	_, _, m := sampleWithQueue(t)
	c, err := ParseCheck("tcp://127.0.0.1:1", CheckOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m.observeChecks([]Result{{Check: c, OK: false, Latency: time.Millisecond}})
	m.observeCapture("x.tar.zst", nil, time.Now())
	m.observeWebhook(webhookTriggered)
	m.observePending(2)
	page := scrape(t, m)
	cmd := exec.Command(tool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(page)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s\npage:\n%s", err, out, page)
	}
}

// TestPromtoolRules runs the shipped rules' unit tests, and checks that
// every metric the rules read is one the page defines.
func TestPromtoolRules(t *testing.T) {
	dir := filepath.Join("..", "deploy", "prometheus")
	rules, err := os.ReadFile(filepath.Join(dir, "snapdiag.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	defined := describedNames(NewMetrics(MetricsConfig{}))
	for _, name := range regexp.MustCompile(`snapdiag_[a-z_]+`).FindAllString(string(rules), -1) {
		if !slices.Contains(defined, name) {
			t.Errorf("the rules read %s, which the page does not define", name)
		}
	}
	tool := promtool(t)
	cmd := exec.Command(tool, "test", "rules", "snapdiag.rules.test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

// describedNames lists the metric names m describes.
func describedNames(m *Metrics) []string {
	ch := make(chan *prometheus.Desc, 100)
	go func() { m.Describe(ch); close(ch) }()
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	var out []string
	for d := range ch {
		if x := re.FindStringSubmatch(d.String()); x != nil {
			out = append(out, x[1])
		}
	}
	return out
}

// TestMetricsBundlesPendingUpload: with --upload, the page says how many
// bundles of the output directory wait for the store: one while the store
// refuses it, none once it is in.
func TestMetricsBundlesPendingUpload(t *testing.T) {
	out, store := t.TempDir(), t.TempDir()
	// A regular file where the store's directory should be: every Put
	// fails, as with a store that is down.
	blocked := filepath.Join(t.TempDir(), "not-a-dir")
	put(t, filepath.Dir(blocked), filepath.Base(blocked), 1)
	target := ship.Target{Scheme: ship.SchemeFile, Dir: store}
	pusher := &ship.Pusher{Target: target, Store: ship.NewFileStore(blocked)}
	m := NewMetrics(MetricsConfig{})
	check, _ := flagCheck(t)
	w := newWatcher(t, Config{Checks: []*Check{check}, Every: time.Second, Failures: 1, Capture: quickCapture(out),
		Upload: pusher, Metrics: m})
	if got := gather(t, m)["snapdiag_bundles_pending_upload"]; len(got) != 0 {
		t.Fatalf("before the first upload round: %v, want no series", got)
	}
	path := filepath.Join(out, bundle.FileName(w.host, time.Now()))
	put(t, out, filepath.Base(path), 100)
	w.markPending(path)
	if got := one(t, gather(t, m), "snapdiag_bundles_pending_upload", nil); got != 1 {
		t.Errorf("marked pending: %v, want 1", got)
	}
	w.uploadPending(context.Background())
	if got := one(t, gather(t, m), "snapdiag_bundles_pending_upload", nil); got != 1 {
		t.Errorf("store refusing: %v, want 1", got)
	}
	pusher.Store = ship.NewFileStore(store)
	w.uploadPending(context.Background())
	if got := one(t, gather(t, m), "snapdiag_bundles_pending_upload", nil); got != 0 {
		t.Errorf("uploaded: %v, want 0", got)
	}
}

// TestUploadLogSchema: the upload's log lines (a refused upload, then one
// that goes in) are messages schema/watch-log.schema.json lists, so a log
// pipeline matching on them sees them.
func TestUploadLogSchema(t *testing.T) {
	out, store := t.TempDir(), t.TempDir()
	blocked := filepath.Join(t.TempDir(), "not-a-dir")
	put(t, filepath.Dir(blocked), filepath.Base(blocked), 1)
	pusher := &ship.Pusher{Target: ship.Target{Scheme: ship.SchemeFile, Dir: store}, Store: ship.NewFileStore(blocked)}
	check, _ := flagCheck(t)
	log, _ := testLogger(t) // validates every line against the schema
	w := newWatcher(t, Config{Checks: []*Check{check}, Every: time.Second, Failures: 1, Capture: quickCapture(out),
		Upload: pusher, Logger: log})
	path := filepath.Join(out, bundle.FileName(w.host, time.Now()))
	put(t, out, filepath.Base(path), 100)
	w.markPending(path)
	if n := w.uploadPending(context.Background()); n != 1 {
		t.Fatalf("store refusing: %d pending, want 1", n)
	}
	pusher.Store = ship.NewFileStore(store)
	if n := w.uploadPending(context.Background()); n != 0 {
		t.Fatalf("store back: %d pending, want 0", n)
	}
}

// TestMetricsReusePortLabelsStable: the sockets of an SO_REUSEPORT group
// keep their series while they live. When one closes, the others must not
// take its name: its drops_total counter would jump to another socket's
// count, a false increase (or a false reset) to rate().
func TestMetricsReusePortLabelsStable(t *testing.T) {
	fds := map[int]int{} // backlog: fd
	var port int
	for _, backlog := range []int{5, 6, 7} {
		ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
		fds[backlog], port = testutil.Listen(t, ap, backlog, testutil.ReusePort)
	}
	h := collectors.DefaultHost()
	_, samplers := collectors.DefaultSet(h)
	m := NewMetrics(MetricsConfig{})
	// names returns the group's listener label by backlog.
	names := func() map[int]string {
		s, err := collectors.TakeSample(context.Background(), h, samplers)
		if err != nil {
			t.Logf("sample: %v", err)
		}
		m.observeSample(s, nil, nil)
		out := map[int]string{}
		for _, x := range gather(t, m)["snapdiag_listener_accept_queue_limit"] {
			if x.labels["port"] == strconv.Itoa(port) {
				out[int(x.value)] = x.labels["listener"]
			}
		}
		return out
	}
	before := names()
	if len(before) != 3 {
		t.Fatalf("group on the page: %v, want 3 sockets", before)
	}
	first := 0
	for backlog, name := range before {
		if !strings.Contains(name, "#") {
			first = backlog
		}
	}
	if first == 0 {
		t.Fatalf("no socket of %v has the plain name", before)
	}
	// Out of LISTEN without closing the descriptor Listen's cleanup closes.
	if err := unix.Shutdown(fds[first], unix.SHUT_RDWR); err != nil {
		t.Fatal(err)
	}
	after := names()
	if len(after) != 2 {
		t.Fatalf("group after one closed: %v, want 2 sockets", after)
	}
	for backlog, name := range after {
		if name != before[backlog] {
			t.Errorf("socket with backlog %d: listener %q, was %q", backlog, name, before[backlog])
		}
	}
}
