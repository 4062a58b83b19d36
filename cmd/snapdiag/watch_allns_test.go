package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/internal/testutil"
	"go.yaml.in/yaml/v3"
)

// TestDaemonSetArgsRun: the node agent's command line, as the DaemonSet
// manifest gives it, starts snapdiag watch --all-netns (it finds the
// namespaces and says how many), and SIGTERM stops it with exit 0.
func TestDaemonSetArgsRun(t *testing.T) {
	testutil.NeedRoot(t, "watch --all-netns enters network namespaces")
	args := daemonSetArgs(t)
	dir := t.TempDir()
	for i := range args {
		if args[i] == "/var/lib/snapdiag" {
			args[i] = dir
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testutil.Snapdiag(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var line struct {
			Msg   string `json:"msg"`
			Count *int   `json:"count"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("log line %q is not JSON (--log-format json): %v", sc.Text(), err)
			continue
		}
		seen = append(seen, line.Msg)
		if line.Msg == "namespaces discovered" && line.Count != nil {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = bufio.NewReader(stderr).WriteTo(&bytes.Buffer{}) }()
	if err := cmd.Wait(); err != nil {
		t.Errorf("snapdiag %q: %v after SIGTERM (log: %q), want exit 0", args, err, seen)
	}
}

// daemonSetArgs reads the agent container's args from the DaemonSet
// manifest.
func daemonSetArgs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../deploy/kubernetes/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Args []string `yaml:"args"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("no DaemonSet with a container in the manifest: %v", err)
		}
		if doc.Kind == "DaemonSet" && len(doc.Spec.Template.Spec.Containers) > 0 {
			return doc.Spec.Template.Spec.Containers[0].Args
		}
	}
}
