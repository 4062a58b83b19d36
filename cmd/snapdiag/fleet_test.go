package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/fleet"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/schema"
)

// TestFleetCommand: snapdiag fleet over a directory tree of real captures
// exits with the worst finding in range, its JSON validates, and --host,
// --since and a bad flag do what the help says.
func TestFleetCommand(t *testing.T) {
	dir := t.TempDir()
	for host, names := range map[string][]string{"web1": {"synflood-cookies-off-v4"}, "ok1": {"healthy-busy"}} {
		for _, name := range names {
			putBundle(t, filepath.Join("..", "..", "fixtures", name, "bundle.tar.zst"), filepath.Join(dir, "prod", host, "snapdiag-"+name+".tar.zst"))
		}
	}
	env := []string{"XDG_CACHE_HOME=" + t.TempDir()}
	run := func(want int, args ...string) fleet.Report {
		t.Helper()
		r := snapdiag(t, env, append([]string{"fleet", "--format", "json"}, args...)...)
		if r.Code != want {
			t.Fatalf("fleet %v: exit %d, want %d\n%s", args, r.Code, want, r.Stderr)
		}
		testutil.ValidateJSON(t, schema.Fleet, []byte(r.Stdout))
		var rep fleet.Report
		if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := run(analyze.ExitCritical, dir); rep.Bundles != 2 || !slices.Equal(rep.Healthy, []string{"ok1"}) {
		t.Errorf("whole fleet: %d bundles, healthy %v; want 2, [ok1]", rep.Bundles, rep.Healthy)
	}
	if rep := run(analyze.ExitOK, "--host", "ok*", "file://"+dir); rep.Bundles != 1 || len(rep.Hosts) != 1 {
		t.Errorf("--host ok*: %d bundles on %d hosts, want 1 on 1", rep.Bundles, len(rep.Hosts))
	}
	if rep := run(analyze.ExitOK, "--since", "2100-01-01", dir); rep.Bundles != 0 {
		t.Errorf("--since 2100: %d bundles, want none", rep.Bundles)
	}
	if r := snapdiag(t, env, "fleet", "--since", "yesterday", dir); r.Code != exitUsage {
		t.Errorf("--since yesterday: exit %d, want %d", r.Code, exitUsage)
	}
	// A zone LoadLocation does not know is a usage error, with no report.
	if r := snapdiag(t, env, "fleet", "--tz", "Mars/Olympus_Mons", dir); r.Code != exitUsage || r.Stdout != "" {
		t.Errorf("--tz Mars/Olympus_Mons: exit %d, stdout %q; want %d, no report", r.Code, r.Stdout, exitUsage)
	}
	if rep := run(analyze.ExitCritical, "--tz", "Europe/Paris", dir); rep.Busiest.Zone != "UTC" {
		t.Errorf("--tz Europe/Paris: JSON busiest.zone %q, want UTC", rep.Busiest.Zone)
	}
	// A glob path.Match refuses would match nothing: a usage error, one
	// error line (then the usual pointer to --help), and no report.
	if r := snapdiag(t, env, "fleet", "--host", "web[", dir); r.Code != exitUsage || r.Stdout != "" ||
		strings.Count(r.Stderr, "snapdiag: ") != 1 {
		t.Errorf("--host 'web[': exit %d, stdout %q, stderr %q; want %d, no report, one error line", r.Code, r.Stdout, r.Stderr, exitUsage)
	}
}

// TestFleetZoneWithoutZoneinfo: --tz takes an IANA name on a host with no
// zone database (a distroless image): the binary embeds one. The test
// hides /usr/share/zoneinfo under an empty tmpfs in a mount namespace of
// its own, and GOROOT's zoneinfo.zip behind a GOROOT that does not exist.
func TestFleetZoneWithoutZoneinfo(t *testing.T) {
	testutil.NeedRoot(t, "a mount namespace hiding the zone database")
	if _, err := os.Stat("/usr/share/zoneinfo"); err != nil {
		t.Skipf("no /usr/share/zoneinfo to hide: %v", err)
	}
	dir := t.TempDir()
	putBundle(t, filepath.Join("..", "..", "fixtures", "healthy-busy", "bundle.tar.zst"), filepath.Join(dir, "prod", "ok1", "snapdiag-ok1-20261115T120000Z.tar.zst"))
	env := []string{"XDG_CACHE_HOME=" + t.TempDir(), "GOROOT=" + filepath.Join(dir, "no-goroot"), "ZONEINFO="}
	hide := `mount -t tmpfs none /usr/share/zoneinfo && exec "$0" "$@"`
	for zone, want := range map[string]int{"Europe/Paris": analyze.ExitOK, "Mars/Olympus_Mons": exitUsage} {
		r := testutil.Run(t, 0, "", env, "unshare", "--mount", "--propagation", "private", "sh", "-c", hide,
			testutil.Snapdiag(t), "fleet", "--tz", zone, dir)
		if r.Code != want {
			t.Errorf("--tz %s without /usr/share/zoneinfo: exit %d, want %d\n%s", zone, r.Code, want, r.Stderr)
		}
	}
}

// TestFleetSchemaRequiresEmitted: over every fixture bundle on three hosts,
// the binary's fleet JSON validates, and every key it writes is required
// by the schema except worst (omitted when no bundle was read), so a
// consumer may rely on what the report always carries.
func TestFleetSchemaRequiresEmitted(t *testing.T) {
	bundles, err := filepath.Glob(filepath.Join("..", "..", "fixtures", "*", "bundle.tar.zst"))
	if err != nil || len(bundles) == 0 {
		t.Fatalf("fixtures: %v, %d bundles", err, len(bundles))
	}
	dir := t.TempDir()
	for i, b := range bundles {
		name := fmt.Sprintf("snapdiag-%s-202611%02dT120000Z.tar.zst", filepath.Base(filepath.Dir(b)), 1+i%28)
		putBundle(t, b, filepath.Join(dir, "prod", fmt.Sprintf("h%d", i%3), name))
	}
	r := snapdiag(t, []string{"XDG_CACHE_HOME=" + t.TempDir()}, "fleet", "--format", "json", dir)
	if r.Code != analyze.ExitCritical {
		t.Fatalf("fleet: exit %d, want %d\n%s", r.Code, analyze.ExitCritical, r.Stderr)
	}
	testutil.ValidateJSON(t, schema.Fleet, []byte(r.Stdout))
	var rep, sch map[string]any
	raw, err := schema.Get(schema.Fleet)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &sch); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatal(err)
	}
	var walk func(at string, sch map[string]any, v any)
	walk = func(at string, sch map[string]any, v any) {
		switch v := v.(type) {
		case map[string]any:
			req, _ := sch["required"].([]any)
			props, _ := sch["properties"].(map[string]any)
			for k, x := range v {
				if !slices.Contains(req, any(k)) && at+"/"+k != "/worst" {
					t.Errorf("%s/%s is always written but not required", at, k)
				}
				if sub, ok := props[k].(map[string]any); ok {
					walk(at+"/"+k, sub, x)
				}
			}
		case []any:
			if items, ok := sch["items"].(map[string]any); ok {
				for _, x := range v {
					walk(at+"[]", items, x)
				}
			}
		}
	}
	walk("", sch, rep)
	if h := rep["half_open"].(map[string]any); len(h["sources"].([]any)) == 0 || len(h["by_prefix"].([]any)) == 0 {
		t.Errorf("no half-open sources or prefixes in the fixtures: the walk did not reach them")
	}
}

// putBundle copies the bundle at src to dst, making dst's directories.
func putBundle(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
