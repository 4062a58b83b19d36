package selftest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

func TestSelect(t *testing.T) {
	all, err := Select(nil)
	if err != nil || len(all) != len(Incidents()) {
		t.Fatalf("Select(nil): %d incidents, %v; want all %d", len(all), err, len(Incidents()))
	}
	// Run's order, whatever the order asked.
	got, err := Select([]string{"healthy-busy", "syn-flood-cookies-off"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range got {
		names = append(names, i.Name)
	}
	if want := []string{"syn-flood-cookies-off", "healthy-busy"}; !slices.Equal(names, want) {
		t.Errorf("selected %v, want %v", names, want)
	}
	if _, err := Select([]string{"syn-flood"}); err == nil {
		t.Error("an unknown incident was accepted")
	}
}

func TestExpectationMet(t *testing.T) {
	const ln = "10.211.1.1:8080"
	flood := Expectation{Finding: analyze.IDSynQueueOverflow, Severity: analyze.Critical, Listener: ln}
	control := Expectation{Below: analyze.Critical}
	for _, tc := range []struct {
		name string
		e    Expectation
		said []Said
		want bool
	}{
		{"found", flood, []Said{{analyze.IDRiskySysctl, analyze.Warning, ""}, {analyze.IDSynQueueOverflow, analyze.Critical, ln}}, true},
		{"too mild", flood, []Said{{analyze.IDSynQueueOverflow, analyze.Warning, ln}}, false},
		{"another listener", flood, []Said{{analyze.IDSynQueueOverflow, analyze.Critical, "10.211.1.1:8081"}}, false},
		{"another finding", flood, []Said{{analyze.IDAcceptQueueOverflow, analyze.Critical, ln}}, false},
		{"nothing said", flood, nil, false},
		{"control quiet", control, []Said{{analyze.IDRiskySysctl, analyze.Warning, ""}}, true},
		{"control critical", control, []Said{{analyze.IDSynQueueOverflow, analyze.Critical, ln}}, false},
	} {
		if got := tc.e.met(tc.said); got != tc.want {
			t.Errorf("%s: met %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestResultJSON: the JSON a pipeline reads decodes to the same typed
// result, severities as words.
func TestResultJSON(t *testing.T) {
	want := &Result{Schema: Schema, Kernel: "6.18.44", Seconds: 7.5, Incidents: []IncidentResult{
		{Name: "syn-flood-cookies-off", Status: Fail, Seconds: 1.9, Verdict: "WARNING: ...",
			Expected: Expectation{Finding: analyze.IDSynQueueOverflow, Severity: analyze.Critical, Listener: "10.211.1.1:8080"},
			Said:     []Said{{analyze.IDHalfOpenClients, analyze.Warning, "10.211.1.1:8080"}}},
		{Name: "healthy-busy", Status: Pass, Expected: Expectation{Below: analyze.Critical}, Said: []Said{}},
	}}
	var buf bytes.Buffer
	if err := RenderJSON(&buf, want); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Incidents []struct {
			Expected map[string]string `json:"expected"`
		} `json:"incidents"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]string{"below": "critical"}, raw.Incidents[1].Expected); d != "" {
		t.Errorf("the control's expectation (-want +got):\n%s", d)
	}
	var got Result
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, &got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	if f := got.Failed(); !slices.Equal(f, []string{"syn-flood-cookies-off"}) {
		t.Errorf("Failed() = %v", f)
	}
}

// TestIncidentErrorKeepsExpectation: an incident whose namespaces cannot be
// made (here iproute2's ip refuses, as in a container without
// CAP_SYS_ADMIN) is an error that still says what diagnosis it expected,
// not the control's "nothing info".
func TestIncidentErrorKeepsExpectation(t *testing.T) {
	testutil.NeedRoot(t, "network namespaces")
	shadowIP(t, "echo 'RTNETLINK answers: Operation not permitted' >&2\nexit 2")
	r := runIncident(context.Background(), Options{Executable: "/bin/false"}, incident(t, "syn-flood-cookies-off"), t.TempDir())
	if r.Status != Error {
		t.Fatalf("status %s, want error (ip fails)", r.Status)
	}
	want := Expectation{Finding: analyze.IDSynQueueOverflow, Severity: analyze.Critical}
	if d := cmp.Diff(want, r.Expected); d != "" {
		t.Errorf("expectation of an incident that could not run (-want +got):\n%s", d)
	}
}

// TestCancelledIncidentSetsUpNothing: once the run is cancelled (Ctrl-C,
// SIGTERM, the incident's timeout) the lab's setup starts no further ip
// command, rather than building both namespaces and their link, each ip
// bounded only by its own 10 s, before the signal is looked at. A
// wrapper in PATH records every ip command and runs the real one.
func TestCancelledIncidentSetsUpNothing(t *testing.T) {
	testutil.NeedRoot(t, "network namespaces")
	realIP, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("iproute2's ip is not installed")
	}
	calls := filepath.Join(t.TempDir(), "calls")
	shadowIP(t, "echo \"$*\" >>"+calls+"\nexec "+realIP+" \"$@\"")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := runIncident(ctx, Options{Executable: "/bin/false"}, incident(t, "accept-queue-full"), t.TempDir())
	if r.Status != Error {
		t.Errorf("status %s, want error", r.Status)
	}
	ran, err := os.ReadFile(calls)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(ran) > 0 {
		t.Errorf("a cancelled incident still ran ip:\n%s", ran)
	}
}

// shadowIP puts a shell script named ip, with body, first in PATH for the
// rest of the test.
func shadowIP(t *testing.T, body string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ip"), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// incident is the incident named name.
func incident(t *testing.T, name string) Incident {
	t.Helper()
	incs, err := Select([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	return incs[0]
}
