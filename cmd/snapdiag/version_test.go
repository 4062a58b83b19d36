package main

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

func TestResolveVersion(t *testing.T) {
	stamped := func(version string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/snapdiag/snapdiag", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	tests := []struct {
		name                 string
		ldVersion, ldCommit  string
		bi                   *debug.BuildInfo
		wantVersion, wantRev string
	}{
		{"release ldflags win", "v1.2.3", "0123abc", stamped("v1.0.0", "vcs.revision", "fff"), "v1.2.3", "0123abc"},
		{"go install @version", "dev", "", stamped("v1.4.0"), "v1.4.0", ""},
		{"clone build", "dev", "", stamped("(devel)", "vcs.revision", "abc123", "vcs.modified", "false"), "dev", "abc123"},
		{"dirty clone build", "dev", "", stamped("(devel)", "vcs.revision", "abc123", "vcs.modified", "true"), "dev", "abc123-dirty"},
		{"no build info", "dev", "", nil, "dev", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, c := resolveVersion(tt.ldVersion, tt.ldCommit, tt.bi)
			if diff := cmp.Diff([2]string{tt.wantVersion, tt.wantRev}, [2]string{v, c}); diff != "" {
				t.Errorf("version, commit (-want +got):\n%s", diff)
			}
		})
	}
}

// versionFields reads the "key value" lines `snapdiag version` prints.
func versionFields(t *testing.T, out string) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case strings.HasPrefix(line, "snapdiag "):
			fields["version"] = strings.TrimPrefix(line, "snapdiag ")
		case strings.HasPrefix(line, "commit "):
			fields["commit"] = strings.TrimPrefix(line, "commit ")
		case strings.HasPrefix(line, "bundle format "):
			fields["format"] = strings.TrimPrefix(line, "bundle format ")
		default:
			t.Errorf("unexpected version line %q", line)
		}
	}
	return fields
}

// A release sets the version with -ldflags; --version on the root command
// and the version command both print it.
func TestVersionFlagPrintsReleaseVersion(t *testing.T) {
	bin := testutil.Build(t, "github.com/snapdiag/snapdiag/cmd/snapdiag",
		"-ldflags", "-X main.version=v1.2.3 -X main.commit=0123abc")
	want := map[string]string{"version": "v1.2.3", "commit": "0123abc", "format": bundle.Format}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := testutil.Run(t, runLimit, "", nil, append([]string{bin}, args...)...)
		if r.Code != 0 {
			t.Fatalf("snapdiag %v: exit %d, stderr %q", args, r.Code, r.Stderr)
		}
		if diff := cmp.Diff(want, versionFields(t, r.Stdout)); diff != "" {
			t.Errorf("snapdiag %v (-want +got):\n%s", args, diff)
		}
	}
}
