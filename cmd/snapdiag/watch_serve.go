package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/snapdiag/snapdiag/watch"
)

// maxTokenFile bounds --webhook-token-file.
const maxTokenFile = 4096

// webhookConfig reads the webhook's flags; nil without --webhook.
func (f watchFlags) webhookConfig() (*watch.WebhookConfig, error) {
	if f.webhook == "" {
		return nil, nil
	}
	m, err := watch.ParseMatchers(f.webhookMatch)
	if err != nil {
		return nil, usageError{fmt.Errorf("--webhook-match: %w", err)}
	}
	cfg := &watch.WebhookConfig{Match: m, Then: f.webhookThen}
	if f.webhookTokenFile != "" {
		data, err := os.ReadFile(f.webhookTokenFile)
		if err != nil {
			return nil, fmt.Errorf("read the webhook token: %w", err)
		}
		if len(data) > maxTokenFile {
			return nil, fmt.Errorf("read the webhook token: %s holds more than %d bytes", f.webhookTokenFile, maxTokenFile)
		}
		cfg.Token = bytes.TrimSpace(data)
		if len(cfg.Token) == 0 {
			return nil, fmt.Errorf("read the webhook token: %s is empty", f.webhookTokenFile)
		}
	}
	return cfg, nil
}

// serveWatch listens on --metrics and --webhook (one listener when they
// name the same address) and serves until ctx ends or the returned stop is
// called.
func serveWatch(ctx context.Context, f watchFlags, metrics *watch.Metrics, hook http.Handler, log *slog.Logger) (func(), error) {
	muxes := map[string]*http.ServeMux{}
	mux := func(addr string) *http.ServeMux {
		if muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
		}
		return muxes[addr]
	}
	if metrics != nil {
		mux(f.metrics).Handle("/metrics", metrics.Handler())
	}
	if hook != nil {
		mux(f.webhook).Handle(watch.WebhookPath, hook)
	}
	var servers []*http.Server
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
	}
	for addr, m := range muxes {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			stop()
			return nil, fmt.Errorf("listen for metrics or webhook: %w", err)
		}
		s := &http.Server{
			Handler:           m,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, s)
		log.Info("serving", "addr", ln.Addr().String(), "metrics", metrics != nil && addr == f.metrics,
			"webhook", hook != nil && addr == f.webhook)
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("serve", "addr", addr, "error", err.Error())
			}
		}()
	}
	go func() {
		<-ctx.Done()
		stop()
	}()
	return stop, nil
}
