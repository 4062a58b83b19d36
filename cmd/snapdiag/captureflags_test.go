package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestCaptureFlagsShared: capture and watch offer every capture flag with the
// same type, default and help, because both register them from one place.
func TestCaptureFlagsShared(t *testing.T) {
	var f captureFlags
	want := pflag.NewFlagSet("capture settings", pflag.ContinueOnError)
	f.register(want)
	for _, cmd := range []struct {
		name  string
		flags *pflag.FlagSet
	}{
		{"capture", newCaptureCmd().Flags()},
		{"watch", newWatchCmd().Flags()},
	} {
		want.VisitAll(func(w *pflag.Flag) {
			got := cmd.flags.Lookup(w.Name)
			switch {
			case got == nil:
				t.Errorf("%s has no --%s", cmd.name, w.Name)
			case got.Value.Type() != w.Value.Type() || got.DefValue != w.DefValue || got.Usage != w.Usage || got.Hidden != w.Hidden:
				t.Errorf("%s --%s: %s %q %q hidden=%v, want %s %q %q hidden=%v", cmd.name, w.Name,
					got.Value.Type(), got.DefValue, got.Usage, got.Hidden, w.Value.Type(), w.DefValue, w.Usage, w.Hidden)
			}
		})
	}
}

// TestCaptureMaxBytesAlias: capture's old --max-bytes still sets the staging
// limit, hidden and deprecated in favour of --stage-bytes.
func TestCaptureMaxBytesAlias(t *testing.T) {
	cmd := newCaptureCmd()
	cmd.SetErr(io.Discard) // the deprecation notice
	if err := cmd.ParseFlags([]string{"--max-bytes", "1048576"}); err != nil {
		t.Fatal(err)
	}
	fl := cmd.Flags()
	if got := fl.Lookup("stage-bytes").Value.String(); got != "1.0MiB" {
		t.Errorf("--stage-bytes after --max-bytes 1048576 = %s, want 1.0MiB", got)
	}
	if old := fl.Lookup("max-bytes"); old.Deprecated == "" || !old.Hidden {
		t.Errorf("--max-bytes deprecated %q hidden %v, want deprecated and hidden", old.Deprecated, old.Hidden)
	}
}

// TestCaptureFlagsValidate: both commands refuse the same out-of-range
// capture settings as usage errors (exit 2), before capturing anything.
func TestCaptureFlagsValidate(t *testing.T) {
	for _, bad := range [][]string{
		{"--samples", "0"},
		{"--samples", "10001"},
		{"--interval", "0s"},
		{"--sample", "-1s"},
		{"--deadline", "0s"},
		// Too short to be meant (1ns once became the 10s default).
		{"--deadline", "1ns"},
		{"--deadline", "10us"},
		{"--deadline", "199ms"},
		{"--socket-cap", "-1"},
		{"--max-packets", "-1"},
		// Zero once silently meant the defaults (all rows, 20,000 packets).
		{"--socket-cap", "0"},
		{"--max-packets", "0"},
		{"--stage-bytes", "0"},
		{"--stage-bytes", "NaN"},
		{"--port", "0"},
		{"--port", "65536"},
	} {
		// --out and --once: a value wrongly accepted runs one short capture
		// or check cycle in a scratch directory, never a watch that does not end.
		out := t.TempDir()
		for _, cmd := range [][]string{{"capture", "--out", out}, {"watch", "--once", "--check", "exec:true", "--out", out}} {
			args := append(append([]string{}, cmd...), bad...)
			if code := Main(args, io.Discard, io.Discard); code != exitUsage {
				t.Errorf("snapdiag %v: exit %d, want %d", args, code, exitUsage)
			}
		}
	}
}

// TestWatchFlagsValidate: watch refuses a check interval too short to be
// meant (--every 1ns burned a core and hammered the service) and a restart
// without a time limit, as usage errors.
func TestWatchFlagsValidate(t *testing.T) {
	for _, bad := range [][]string{
		{"--every", "1ns"},
		{"--every", "99ms"},
		{"--then-timeout", "0"},
		{"--then-timeout", "-1s"},
	} {
		args := append([]string{"watch", "--once", "--check", "exec:true", "--out", t.TempDir()}, bad...)
		if code := Main(args, io.Discard, io.Discard); code != exitUsage {
			t.Errorf("snapdiag %v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestUsageErrorWording: a bad --port says what is wrong without Go's
// parser noise, and the usage hint names the subcommand's own --help.
func TestUsageErrorWording(t *testing.T) {
	for _, args := range [][]string{
		{"capture", "--port", "abc"},
		{"capture", "--port", "143,abc"},
		{"watch", "--check", "exec:true", "--port", "abc"},
	} {
		var stderr strings.Builder
		if code := Main(args, io.Discard, &stderr); code != exitUsage {
			t.Errorf("snapdiag %v: exit %d, want %d", args, code, exitUsage)
		}
		if strings.Contains(stderr.String(), "strconv") || strings.Contains(stderr.String(), "'snapdiag --help'") {
			t.Errorf("snapdiag %v: %q: parser noise, or the hint names snapdiag's --help, not %s's", args, stderr.String(), args[0])
		}
	}
}
