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
