package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// TestCaptureStoppedBySignal: a capture cut short by SIGTERM writes its
// bundle and records the signal, not a deadline hit, and analyze's
// bundle-incomplete diagnosis says the signal stopped it.
func TestCaptureStoppedBySignal(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	var stdout strings.Builder
	cmd := exec.CommandContext(ctx, testutil.Snapdiag(t), "capture", "--out", dir,
		"--samples", "100", "--interval", "200ms", "--sample", "0", "--deadline", "30s")
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The staging folder exists once the capture has begun collecting.
	testutil.Eventually(t, 0, "the capture's staging folder", func() (bool, string) {
		m, _ := filepath.Glob(filepath.Join(dir, ".snapdiag-tmp-stage-*"))
		return len(m) > 0, strings.Join(m, " ")
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("capture after SIGTERM: %v", err)
	}
	path := lastLine(stdout.String())
	b := openBundle(t, path)
	m := b.Manifest()
	b.Close()
	if m.DeadlineHit || m.StoppedBy != bundle.StoppedBySignal || m.Signal != "SIGTERM" {
		t.Errorf("manifest deadline_hit %v, stopped_by %q, signal %q; want false, %q, SIGTERM",
			m.DeadlineHit, m.StoppedBy, m.Signal, bundle.StoppedBySignal)
	}
	s, err := analyze.LoadBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	var d *analyze.BundleIncomplete
	for _, f := range analyze.Analyze(s, path, analyze.Rules()).Findings {
		if f.ID == analyze.IDBundleIncomplete {
			d, _ = f.Diagnosis.(*analyze.BundleIncomplete)
		}
	}
	if d == nil || d.DeadlineHit || d.StoppedBy != bundle.StoppedBySignal || d.Signal != "SIGTERM" {
		t.Errorf("bundle-incomplete diagnosis %+v, want stopped by SIGTERM, no deadline hit", d)
	}
}
