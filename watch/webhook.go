package watch

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
)

// Limits of the Alertmanager webhook.
const (
	// MaxWebhookBody bounds a payload; Alertmanager sends a group's alerts
	// in one, and its max_alerts setting truncates large groups.
	MaxWebhookBody = 1 << 20
	// maxAlerts, maxLabels and maxLabelBytes bound what a payload may hold.
	maxAlerts     = 1000
	maxLabels     = 128
	maxLabelBytes = 16 << 10
	// DefaultWebhookEvery is the least time between two accepted requests:
	// Alertmanager resends a firing group every group_interval (5m by
	// default) and retries a refused one within seconds, so one a second
	// is generous, and a flood is refused before its body is read.
	DefaultWebhookEvery = time.Second
)

// WebhookPath is where the webhook is served.
const WebhookPath = "/alertmanager"

// Results counted by snapdiag_webhook_requests_total.
const (
	webhookTriggered    = "triggered"
	webhookNoMatch      = "no_match"
	webhookPending      = "pending"
	webhookBad          = "bad_request"
	webhookUnauthorized = "unauthorized"
	webhookLimited      = "rate_limited"
)

var webhookResults = []string{webhookTriggered, webhookNoMatch, webhookPending, webhookBad, webhookUnauthorized, webhookLimited}

// Alert is one alert of an Alertmanager webhook payload.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Firing reports whether the alert fires (not resolved).
func (a Alert) Firing() bool { return a.Status == "firing" }

// Manifest is the alert as a bundle's trigger records it.
func (a Alert) Manifest() *bundle.Alert {
	out := &bundle.Alert{
		Name: a.Labels["alertname"], Labels: a.Labels, Annotations: a.Annotations,
		Fingerprint: a.Fingerprint, GeneratorURL: a.GeneratorURL,
	}
	if !a.StartsAt.IsZero() {
		out.StartsAt = a.StartsAt.UTC().Format(time.RFC3339Nano)
	}
	return out
}

// webhookPayload is Alertmanager's webhook body, version 4; the group's
// fields beside the alerts are not needed.
type webhookPayload struct {
	Version string  `json:"version"`
	Status  string  `json:"status"`
	Alerts  []Alert `json:"alerts"`
}

// ErrBadPayload is wrapped by DecodeAlerts' errors.
var ErrBadPayload = errors.New("bad alertmanager payload")

// DecodeAlerts reads an Alertmanager webhook payload (version 4), at most
// MaxWebhookBody bytes, and checks it: every alert firing or resolved, with
// an alertname, and within the bounds on alerts and labels.
func DecodeAlerts(r io.Reader) ([]Alert, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxWebhookBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %w", ErrBadPayload, err)
	}
	if len(data) > MaxWebhookBody {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrBadPayload, MaxWebhookBody)
	}
	var p webhookPayload
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadPayload, oneLine(err.Error()))
	}
	switch {
	case p.Version != "4":
		return nil, fmt.Errorf("%w: version %q, want \"4\"", ErrBadPayload, oneLine(clip(p.Version)))
	case len(p.Alerts) > maxAlerts:
		return nil, fmt.Errorf("%w: %d alerts, more than %d", ErrBadPayload, len(p.Alerts), maxAlerts)
	}
	for i, a := range p.Alerts {
		if a.Status != "firing" && a.Status != "resolved" {
			return nil, fmt.Errorf("%w: alert %d: status %q, want firing or resolved", ErrBadPayload, i, oneLine(clip(a.Status)))
		}
		if a.Labels["alertname"] == "" {
			return nil, fmt.Errorf("%w: alert %d: no alertname label", ErrBadPayload, i)
		}
		if len(a.Labels)+len(a.Annotations) > maxLabels {
			return nil, fmt.Errorf("%w: alert %d: more than %d labels and annotations", ErrBadPayload, i, maxLabels)
		}
		for k, v := range a.Labels {
			if len(k)+len(v) > maxLabelBytes {
				return nil, fmt.Errorf("%w: alert %d: label %q longer than %d bytes", ErrBadPayload, i, oneLine(clip(k)), maxLabelBytes)
			}
		}
		for k, v := range a.Annotations {
			if len(k)+len(v) > maxLabelBytes {
				return nil, fmt.Errorf("%w: alert %d: annotation %q longer than %d bytes", ErrBadPayload, i, oneLine(clip(k)), maxLabelBytes)
			}
		}
	}
	return p.Alerts, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// WebhookConfig configures the Alertmanager webhook.
type WebhookConfig struct {
	// Match selects the alerts that trigger; empty matches every alert.
	Match Matchers
	// Token, when not empty, is the bearer token every request must carry.
	Token []byte
	// Every is the least time between two accepted requests (0:
	// DefaultWebhookEvery).
	Every time.Duration
	// Then runs the restart command after an alert's capture too.
	Then bool
}

// alertRequest is a matching alert handed from the webhook to the loop.
type alertRequest struct{ alert Alert }

// Webhook returns the handler of Alertmanager's webhook, configured by
// Config.Webhook (cfg below). A firing alert matching cfg.Match is handed to Run, which captures it as it would a
// failed check's (lock, cool-down; the restart command only with
// cfg.Then); the handler answers 202 without waiting. Resolved alerts do
// nothing. A malformed payload is a 400 with a one-line reason, a missing
// or wrong token 401, a request sooner than cfg.Every after the last
// accepted one 503 with Retry-After (which Alertmanager retries).
// It is nil when Config.Webhook is.
func (w *Watcher) Webhook() http.Handler {
	if w.cfg.Webhook == nil {
		return nil
	}
	cfg := *w.cfg.Webhook
	if cfg.Every <= 0 {
		cfg.Every = DefaultWebhookEvery
	}
	return &webhook{w: w, cfg: cfg}
}

type webhook struct {
	w   *Watcher
	cfg WebhookConfig

	mu   sync.Mutex
	last time.Time
}

func (h *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	log, metrics := h.w.log, h.w.cfg.Metrics
	reply := func(code int, result, msg string) {
		metrics.observeWebhook(result)
		if code >= 400 {
			log.Warn("webhook request refused", "status", code, "reason", msg, "remote", r.RemoteAddr)
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.WriteHeader(code)
		fmt.Fprintln(rw, msg)
	}
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		reply(http.StatusMethodNotAllowed, webhookBad, "POST an Alertmanager webhook payload")
		return
	}
	if len(h.cfg.Token) > 0 {
		got, ok := bearerToken(r.Header.Get("Authorization"))
		// The token never reaches the log, only whether it matched.
		if !ok || subtle.ConstantTimeCompare([]byte(got), h.cfg.Token) != 1 {
			reply(http.StatusUnauthorized, webhookUnauthorized, "missing or wrong bearer token")
			return
		}
	}
	now := time.Now()
	h.mu.Lock()
	limited := !h.last.IsZero() && now.Sub(h.last) < h.cfg.Every
	if !limited {
		h.last = now
	}
	h.mu.Unlock()
	if limited {
		// 503, not 429: Alertmanager's webhook notifier retries a 5xx
		// with backoff but drops a 4xx until the group's next
		// notification (group_interval, 5m by default), and two groups
		// firing together must both reach the watch.
		rw.Header().Set("Retry-After", "1")
		reply(http.StatusServiceUnavailable, webhookLimited, "too many requests; retry")
		return
	}
	alerts, err := DecodeAlerts(http.MaxBytesReader(rw, r.Body, MaxWebhookBody))
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		reply(http.StatusRequestEntityTooLarge, webhookBad, fmt.Sprintf("body larger than %d bytes", MaxWebhookBody))
		return
	}
	if err != nil {
		reply(http.StatusBadRequest, webhookBad, err.Error())
		return
	}
	for _, a := range alerts {
		if !a.Firing() || !h.cfg.Match.Matches(a.Labels) {
			continue
		}
		select {
		case h.w.alerts <- alertRequest{alert: a}:
			log.Info("webhook: alert accepted", "alertname", a.Labels["alertname"], "fingerprint", a.Fingerprint)
			reply(http.StatusAccepted, webhookTriggered, "capture requested for "+a.Labels["alertname"])
		default:
			reply(http.StatusAccepted, webhookPending, "a capture is already pending")
		}
		return
	}
	reply(http.StatusOK, webhookNoMatch, "no firing alert matches")
}

// bearerToken returns the token of an Authorization header of the Bearer
// scheme. HTTP's scheme names are case-insensitive, and spaces may separate
// the scheme from its token: an Alertmanager configured with the type
// "bearer" sends it in lower case.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(token, " "), true
}

// IsLoopback reports whether a listen address (HOST:PORT) binds only the
// loopback interface; an empty host binds every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// alertTrigger captures for an alert the webhook accepted, unless the
// cool-down runs; the restart command follows only when the webhook was
// configured with Then.
func (w *Watcher) alertTrigger(ctx context.Context, a Alert) *Incident {
	name := a.Labels["alertname"]
	if now := w.cfg.Clock.Now(); now.Before(w.cooldownUntil) {
		w.log.Warn("alert in cool-down; not capturing", "alertname", name,
			"cooldown_left", w.cooldownUntil.Sub(now).Round(time.Second).String())
		w.cfg.Metrics.observeCapture("", ErrRecentBundle, now)
		return nil
	}
	w.cfg.Metrics.observeTrigger(SourceAlert)
	inc := &Incident{Alert: &a}
	w.log.Warn("triggered by an alert: capturing", "alertname", name, "fingerprint", a.Fingerprint,
		"history_samples", w.hist.Len(), "history_bytes", w.hist.Bytes())
	reason := "alertmanager: " + name
	if s := a.Annotations["summary"]; s != "" {
		reason += ": " + s
	}
	inc.Bundle, inc.CaptureErr = w.capture(context.WithoutCancel(ctx), bundle.Trigger{Reason: reason, Alert: a.Manifest()})
	if inc.CaptureErr != nil {
		w.log.Error("no bundle written", "error", inc.CaptureErr.Error())
	}
	if w.cfg.Webhook != nil && w.cfg.Webhook.Then {
		w.restart(ctx, inc)
	}
	w.consecutive = 0
	w.cooldownUntil = w.cfg.Clock.Now().Add(w.cfg.Cooldown)
	return inc
}
