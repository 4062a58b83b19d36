package main

import (
	"testing"
)

// TestWatchOnceRestartFailed: watch --once exits 5 when the restart command
// failed (a non-zero exit, a program that does not exist), and by the
// analysis (3 or 4) when it succeeded, so a timer or cron job can tell a
// service that was not brought back.
func TestWatchOnceRestartFailed(t *testing.T) {
	for _, tc := range []struct {
		then string
		want []int
	}{
		{"true", []int{exitWarning, exitCritical}},
		{"exit 7", []int{exitRestartFailed}},
		{"/nonexistent/restart-it", []int{exitRestartFailed}},
	} {
		r := snapdiag(t, nil, "watch", "--once", "--check", "exec:false", "--failures", "1", "--cooldown", "0",
			"--samples", "1", "--sample", "0", "--history", "0", "--min-free", "0",
			"--out", t.TempDir(), "--then", tc.then)
		ok := false
		for _, c := range tc.want {
			ok = ok || r.Code == c
		}
		if !ok {
			t.Errorf("--then %q: exit %d, want one of %v\n%s", tc.then, r.Code, tc.want, r.Stderr)
		}
	}
}

// TestWatchServeUsage: the metrics and webhook flags are checked before the
// watch starts: a webhook off loopback without a token, a watch with
// nothing to do, --once with a server and a bad matcher are usage errors
// (exit 2).
func TestWatchServeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--webhook", "0.0.0.0:9917"},
		{"--webhook", ":9917", "--webhook-match", `alertname="x"`},
		{},
		{"--once", "--metrics", "127.0.0.1:0", "--check", "exec:true"},
		{"--webhook", "127.0.0.1:0", "--webhook-match", `alertname=~"("`},
		{"--metrics", "127.0.0.1:0", "--metrics-listeners", "0"},
		{"--metrics", "127.0.0.1:0", "--webhook-then"},
	} {
		r := snapdiag(t, nil, append([]string{"watch", "--out", t.TempDir()}, args...)...)
		if r.Code != exitUsage {
			t.Errorf("watch %q: exit %d, want %d\n%s", args, r.Code, exitUsage, r.Stderr)
		}
	}
}
