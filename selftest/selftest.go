// Package selftest reproduces the classic listen-path incidents on the
// running kernel, each in throw-away network namespaces (package lab),
// captures each with the snapdiag binary itself and analyzes the bundle, and
// says whether snapdiag's diagnosis is the expected one: an operator's proof,
// on their own machine, that the tool sees what it claims to see.
//
// The capture is the binary's own `snapdiag capture`, run with `ip netns
// exec` inside the incident's server namespace (it must read that
// namespace's /proc/net and sock_diag, which a thread of this process cannot
// do for the collectors' whole run); the analysis is in-process, through
// analyze.LoadPath and analyze.Analyze, the calls `snapdiag analyze` makes.
// The incidents' services are the binary too (its hidden selftest-service
// command, package labsvc), so nothing is built or downloaded.
package selftest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/lab"
	"golang.org/x/sys/unix"
)

// Schema names the JSON form of a Result.
const Schema = "snapdiag.selftest/v1"

// ServiceCommand is the hidden snapdiag command that runs the incidents'
// stand-in service (package labsvc).
const ServiceCommand = "selftest-service"

// Time limits. The four incidents take about 7 s in all on a 2-core
// machine under load (2 s each: a flood's plateau, a capture of 1 s of
// samples, the teardown); IncidentTimeout bounds one incident, setup to
// teardown, however busy the machine is, so a whole run ends within a
// minute.
const (
	IncidentTimeout = 15 * time.Second
	// captureDeadline is the capture's own --deadline: it writes a partial
	// bundle rather than none when it runs out.
	captureDeadline = 10 * time.Second
)

// ErrNeedRoot is Run's error when the process is not root: the incidents
// need network namespaces, which only root may create.
var ErrNeedRoot = lab.ErrNeedRoot

// Status is an incident's outcome.
type Status string

// Outcomes.
const (
	// Pass: snapdiag said what the incident is.
	Pass Status = "pass"
	// Fail: the incident happened, and snapdiag said something else.
	Fail Status = "fail"
	// Error: the incident could not be brought about or captured, so it says
	// nothing about the diagnosis.
	Error Status = "error"
)

// Expectation is the diagnosis an incident must get.
type Expectation struct {
	// Finding is the finding id that must be reported, about Listener, at
	// Severity or worse. Empty for the control incident.
	Finding  string           `json:"finding,omitempty"`
	Severity analyze.Severity `json:"severity,omitempty"`
	Listener string           `json:"listener,omitempty"`
	// Below, for the control incident, is the severity no finding may reach.
	Below analyze.Severity `json:"below,omitempty"`
}

// String is the expectation as the table prints it.
func (e Expectation) String() string {
	if e.Finding == "" {
		return "nothing " + e.Below.String()
	}
	return fmt.Sprintf("%s (%s)", e.Finding, e.Severity)
}

// Said is one finding of snapdiag's report on an incident.
type Said struct {
	ID       string           `json:"id"`
	Severity analyze.Severity `json:"severity"`
	Listener string           `json:"listener,omitempty"`
}

// IncidentResult is one incident's outcome.
type IncidentResult struct {
	Name     string      `json:"name"`
	Expected Expectation `json:"expected"`
	// Said is every finding of the report, worst first.
	Said   []Said `json:"said"`
	Status Status `json:"status"`
	// Error says why the incident could not be run (Status error).
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
	// Verdict is the report's one-line verdict.
	Verdict string `json:"verdict,omitempty"`
}

// Result is a whole self-test.
type Result struct {
	Schema string `json:"schema"`
	Kernel string `json:"kernel"`
	Passed bool   `json:"passed"`
	// Interrupted is set when a signal ended the run before every incident
	// had run; Incidents holds those that did.
	Interrupted bool             `json:"interrupted,omitempty"`
	Seconds     float64          `json:"seconds"`
	Incidents   []IncidentResult `json:"incidents"`
}

// Failed names the incidents that did not pass.
func (r *Result) Failed() []string {
	var names []string
	for _, i := range r.Incidents {
		if i.Status != Pass {
			names = append(names, i.Name)
		}
	}
	return names
}

// Options choose what Run does.
type Options struct {
	// Executable is the snapdiag binary that captures and serves
	// (os.Executable()).
	Executable string
	// Incidents names the incidents to run; empty runs them all.
	Incidents []string
	// Rules is the rule set the analysis uses; nil is analyze.Rules(). Only
	// a test changes it, to see a wrong analyzer fail.
	Rules []analyze.Rule
	// Progress, when not nil, is called as each incident starts.
	Progress func(name string)
}

// Run reproduces each incident in turn, in its own namespaces, and returns
// their outcomes. ctx ending (SIGINT, SIGTERM) stops the incident under way:
// its processes are killed and its namespaces deleted before Run returns.
// An incident's failure is in the Result, not the error; the error is for a
// run that could not start (not root, unknown incident, no temporary
// directory).
func Run(ctx context.Context, o Options) (*Result, error) {
	incidents, err := Select(o.Incidents)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, ErrNeedRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("selftest needs iproute2's ip to create network namespaces: %w", err)
	}
	if o.Executable == "" {
		return nil, errors.New("selftest: no snapdiag executable to capture with")
	}
	if o.Rules == nil {
		o.Rules = analyze.Rules()
	}
	// Namespaces left by a self-test or a lab test that was killed.
	if _, err := lab.CleanStale(); err != nil {
		return nil, fmt.Errorf("selftest: %w", err)
	}
	dir, err := os.MkdirTemp("", "snapdiag-selftest-")
	if err != nil {
		return nil, fmt.Errorf("selftest: %w", err)
	}
	defer os.RemoveAll(dir)

	start := time.Now()
	res := &Result{Schema: Schema, Kernel: kernelRelease(), Incidents: []IncidentResult{}}
	for _, inc := range incidents {
		if ctx.Err() != nil {
			break
		}
		if o.Progress != nil {
			o.Progress(inc.Name)
		}
		res.Incidents = append(res.Incidents, runIncident(ctx, o, inc, dir))
	}
	res.Seconds = round2(time.Since(start).Seconds())
	res.Passed = len(res.Incidents) == len(incidents) && len(res.Failed()) == 0
	if err := ctx.Err(); err != nil {
		res.Passed, res.Interrupted = false, true
		return res, fmt.Errorf("selftest interrupted: %w", context.Cause(ctx))
	}
	return res, nil
}

// runIncident brings inc about in a lab of its own, captures and analyzes
// it, and removes the lab, all within IncidentTimeout.
func runIncident(ctx context.Context, o Options, inc Incident, dir string) (r IncidentResult) {
	start := time.Now()
	r = IncidentResult{Name: inc.Name, Status: Error, Said: []Said{}, Expected: inc.expect(nil)}
	defer func() { r.Seconds = round2(time.Since(start).Seconds()) }()
	ctx, cancel := context.WithTimeout(ctx, IncidentTimeout)
	defer cancel()

	// OpenContext: a signal or the timeout also stops the namespaces' setup,
	// whose ip commands could otherwise run on for many seconds each.
	l, err := lab.OpenContext(ctx, lab.Options{ServiceCommand: []string{o.Executable, ServiceCommand}, ServiceListeners: true})
	if err != nil {
		r.Error = err.Error()
		return r
	}
	// The lab's waits end when it closes: closing it as ctx ends (a signal,
	// the incident's timeout) stops a scenario wherever it is.
	stopped := context.AfterFunc(ctx, func() { l.Close() })
	defer func() {
		stopped()
		if err := l.Close(); err != nil && r.Error == "" {
			r.Status, r.Error = Error, err.Error()
		}
	}()

	r.Expected = inc.expect(l)
	path, err := inc.run(l, func() (string, error) { return capture(ctx, l, o.Executable, dir, inc) })
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
		r.Error = err.Error()
		return r
	}
	s, err := analyze.LoadPath(path)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	report := analyze.Analyze(s, path, o.Rules)
	r.Verdict = report.Verdict
	for _, f := range report.Findings {
		r.Said = append(r.Said, Said{ID: f.ID, Severity: f.Severity, Listener: f.Listener})
	}
	slices.SortStableFunc(r.Said, func(a, b Said) int { return int(b.Severity) - int(a.Severity) })
	r.Status = Fail
	if r.Expected.met(r.Said) {
		r.Status = Pass
	}
	return r
}

// met reports whether the findings said are what e expects.
func (e Expectation) met(said []Said) bool {
	if e.Finding == "" {
		return !slices.ContainsFunc(said, func(s Said) bool { return s.Severity >= e.Below })
	}
	return slices.ContainsFunc(said, func(s Said) bool {
		return s.ID == e.Finding && s.Severity >= e.Severity && (e.Listener == "" || s.Listener == e.Listener)
	})
}

// capture runs `snapdiag capture` inside the lab's server namespace, on the
// incident's port, and returns the bundle's path (the last line of its
// stdout). Three counter samples half a second apart and a packet sample
// over the window: enough for every rule the incidents need, in about 2 s.
func capture(ctx context.Context, l *lab.Lab, exe, dir string, inc Incident) (string, error) {
	out, err := l.Exec(ctx, l.Server, exe, "capture", "--out", dir, "--port", fmt.Sprint(inc.Port),
		"--samples", "3", "--interval", "500ms", "--sample", "1s",
		"--deadline", captureDeadline.String(), "--reason", "snapdiag selftest: "+inc.Name, "--quiet")
	if err != nil {
		return "", fmt.Errorf("capture: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out.Stdout)), "\n")
	path := lines[len(lines)-1]
	if path == "" {
		return "", errors.New("capture printed no bundle path")
	}
	return path, nil
}

// kernelRelease is uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
