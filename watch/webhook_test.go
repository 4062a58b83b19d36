package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// payload is an Alertmanager webhook body (version 4) holding alerts.
func payload(t testing.TB, alerts ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "snapdiag",
		"groupLabels": map[string]string{}, "commonLabels": map[string]string{}, "commonAnnotations": map[string]string{},
		"externalURL": "http://am:9093", "truncatedAlerts": 0, "alerts": alerts,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func alert(status, name string) map[string]any {
	return map[string]any{
		"status":       status,
		"labels":       map[string]string{"alertname": name, "instance": "db1:9917", "listener": "0.0.0.0:8080"},
		"annotations":  map[string]string{"summary": "SYN queue of 0.0.0.0:8080 is 100% full", "runbook": "snapdiag analyze shows synqueue"},
		"startsAt":     "2026-12-06T01:00:00.5Z",
		"endsAt":       "0001-01-01T00:00:00Z",
		"generatorURL": "http://prom:9090/graph",
		"fingerprint":  "a1b2c3d4e5f60718",
	}
}

func post(t testing.TB, h http.Handler, token string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func webhookWatcher(t *testing.T, cfg WebhookConfig, dir string) *Watcher {
	t.Helper()
	log, _ := testLogger(t)
	return newWatcher(t, Config{
		Every: time.Hour, Failures: 1, Cooldown: time.Hour, Capture: quickCapture(dir),
		Logger: log, Webhook: &cfg, Metrics: NewMetrics(MetricsConfig{}),
	})
}

// TestWebhookRefuses: what the webhook must not act on gets its status and
// a one-line reason, and nothing is handed to the loop.
func TestWebhookRefuses(t *testing.T) {
	match, err := ParseMatchers(`alertname=~"SnapdiagSyn.*"`)
	if err != nil {
		t.Fatal(err)
	}
	big := payload(t, alert("firing", "SnapdiagSynQueueNearLimit"))
	big = append(big[:len(big)-1], []byte(`,"pad":"`+strings.Repeat("x", MaxWebhookBody)+`"}`)...)
	for _, tc := range []struct {
		name, token string
		body        []byte
		want        int
	}{
		{"no token", "", payload(t, alert("firing", "SnapdiagSynQueueNearLimit")), http.StatusUnauthorized},
		{"wrong token", "secreT", payload(t, alert("firing", "SnapdiagSynQueueNearLimit")), http.StatusUnauthorized},
		{"not JSON", "secret", []byte("{\"version\":\"4\",\n\"alerts\":[}"), http.StatusBadRequest},
		{"version 3", "secret", bytes.Replace(payload(t, alert("firing", "SnapdiagSynQueueNearLimit")), []byte(`"version":"4"`), []byte(`"version":"3"`), 1), http.StatusBadRequest},
		{"unknown status", "secret", payload(t, alert("pending", "SnapdiagSynQueueNearLimit")), http.StatusBadRequest},
		{"no alertname", "secret", payload(t, alert("firing", "")), http.StatusBadRequest},
		{"too large", "secret", big, http.StatusRequestEntityTooLarge},
		{"resolved", "secret", payload(t, alert("resolved", "SnapdiagSynQueueNearLimit")), http.StatusOK},
		{"no match", "secret", payload(t, alert("firing", "SnapdiagAcceptQueueFull")), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := webhookWatcher(t, WebhookConfig{Match: match, Token: []byte("secret")}, t.TempDir())
			rec := post(t, w.Webhook(), tc.token, tc.body)
			if rec.Code != tc.want {
				t.Errorf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if lines := strings.Count(strings.TrimSpace(rec.Body.String()), "\n"); lines != 0 {
				t.Errorf("reason of %d lines: %q", lines+1, rec.Body)
			}
			if len(w.alerts) != 0 {
				t.Errorf("an alert was handed to the loop")
			}
		})
	}
}

// TestWebhookRateLimit: a second request within Every is refused before
// its body is read, with an answer Alertmanager retries; a matching one is
// handed to the loop once.
func TestWebhookRateLimit(t *testing.T) {
	w := webhookWatcher(t, WebhookConfig{Every: time.Hour}, t.TempDir())
	h := w.Webhook()
	body := payload(t, alert("firing", "SnapdiagSynQueueNearLimit"))
	if rec := post(t, h, "", body); rec.Code != http.StatusAccepted {
		t.Fatalf("first: %d %s", rec.Code, rec.Body)
	}
	// Alertmanager's webhook notifier retries a 5xx answer (with backoff)
	// and drops any 4xx until the group's next notification, minutes
	// later: a matching alert refused for the rate must be answered 5xx.
	rec := post(t, h, "", body)
	if rec.Code/100 != 5 {
		t.Fatalf("second: %d %s, want a 5xx Alertmanager retries", rec.Code, rec.Body)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Errorf("second: no Retry-After")
	}
	if len(w.alerts) != 1 {
		t.Fatalf("%d alerts handed to the loop, want 1", len(w.alerts))
	}
}

// TestWebhookCaptures: a matching firing alert makes the running watch
// write a bundle whose trigger is the alert, without the restart command
// unless Then asks for it, and starts the cool-down.
func TestWebhookCaptures(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "restarted")
	match, err := ParseMatchers(`alertname="SnapdiagSynQueueNearLimit",instance="db1:9917"`)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := testLogger(t)
	m := NewMetrics(MetricsConfig{})
	w := newWatcher(t, Config{
		Every: time.Hour, Failures: 1, Cooldown: time.Hour, Capture: quickCapture(dir), Logger: log,
		Then: "touch " + marker, Webhook: &WebhookConfig{Match: match, Every: time.Nanosecond}, Metrics: m,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	h := w.Webhook()
	if rec := post(t, h, "", payload(t, alert("resolved", "SnapdiagSynQueueNearLimit"), alert("firing", "SnapdiagSynQueueNearLimit"))); rec.Code != http.StatusAccepted {
		t.Fatalf("post: %d %s", rec.Code, rec.Body)
	}
	testutil.Eventually(t, 30*time.Second, "a bundle", func() (bool, string) {
		n := one(t, gather(t, m), "snapdiag_captures_total", map[string]string{"result": CaptureWritten})
		return n == 1, "captures written"
	})
	got := bundlesIn(t, dir)
	if len(got) != 1 {
		t.Fatalf("bundles %v, want 1", got)
	}
	man := manifestOf(t, testutil.ReadBundle(t, filepath.Join(dir, got[0])))
	want := &bundle.Alert{
		Name:         "SnapdiagSynQueueNearLimit",
		Labels:       map[string]string{"alertname": "SnapdiagSynQueueNearLimit", "instance": "db1:9917", "listener": "0.0.0.0:8080"},
		Annotations:  map[string]string{"summary": "SYN queue of 0.0.0.0:8080 is 100% full", "runbook": "snapdiag analyze shows synqueue"},
		StartsAt:     "2026-12-06T01:00:00.5Z",
		Fingerprint:  "a1b2c3d4e5f60718",
		GeneratorURL: "http://prom:9090/graph",
	}
	if d := cmp.Diff(want, man.Trigger.Alert); d != "" {
		t.Errorf("trigger alert (-want +got):\n%s", d)
	}
	if man.Trigger.Check != nil {
		t.Errorf("trigger check %+v, want none", man.Trigger.Check)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the restart command ran without WebhookConfig.Then")
	}
	// Within the cool-down a second alert writes nothing.
	if rec := post(t, h, "", payload(t, alert("firing", "SnapdiagSynQueueNearLimit"))); rec.Code != http.StatusAccepted {
		t.Fatalf("second post: %d %s", rec.Code, rec.Body)
	}
	testutil.Eventually(t, 30*time.Second, "the second alert skipped", func() (bool, string) {
		n := one(t, gather(t, m), "snapdiag_captures_total", map[string]string{"result": CaptureRecent})
		return n == 1, "captures skipped in the cool-down"
	})
	if got := bundlesIn(t, dir); len(got) != 1 {
		t.Errorf("bundles %v after an alert in the cool-down, want 1", got)
	}
}

// FuzzDecodeAlerts: no panic on any body, and what decodes holds within
// the bounds.
func FuzzDecodeAlerts(f *testing.F) {
	f.Add(payload(f, alert("firing", "A"), alert("resolved", "B")))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"x"}}]}`))
	f.Add([]byte(`{"version":"4","alerts":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		alerts, err := DecodeAlerts(bytes.NewReader(data))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of several lines: %q", err)
			}
			return
		}
		if len(alerts) > maxAlerts {
			t.Fatalf("%d alerts", len(alerts))
		}
		for _, a := range alerts {
			if a.Labels["alertname"] == "" || (a.Status != "firing" && a.Status != "resolved") {
				t.Fatalf("accepted %+v", a)
			}
			_ = a.Manifest()
		}
	})
}

// TestWebhookBearerScheme: the authentication scheme is case-insensitive
// (an Alertmanager whose authorization type is written "bearer" sends it
// so); the token itself is not.
func TestWebhookBearerScheme(t *testing.T) {
	body := payload(t, alert("firing", "SnapdiagSynQueueNearLimit"))
	for _, tc := range []struct {
		header string
		want   int
	}{
		{"bearer secret", http.StatusAccepted},
		{"BEARER secret", http.StatusAccepted},
		{"Bearer  secret", http.StatusAccepted},
		{"Bearer SECRET", http.StatusUnauthorized},
		{"Basic secret", http.StatusUnauthorized},
		{"Bearersecret", http.StatusUnauthorized},
	} {
		w := webhookWatcher(t, WebhookConfig{Token: []byte("secret")}, t.TempDir())
		req := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(body))
		req.Header.Set("Authorization", tc.header)
		rec := httptest.NewRecorder()
		w.Webhook().ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("Authorization %q: status %d, want %d", tc.header, rec.Code, tc.want)
		}
	}
}
