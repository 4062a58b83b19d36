package selftest

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/lab"
)

// Incident is one classic incident: how to bring it about in a lab, and the
// diagnosis it must get.
type Incident struct {
	// Name is the incident's stable name (--incident NAME, the JSON).
	Name string
	// Title says what happens, for the help text.
	Title string
	// Port is the service's port, the capture's --port.
	Port uint16
	// finding and severity are the expected finding; empty finding means
	// the control: no finding at severity or worse.
	finding  string
	severity analyze.Severity
	// start brings the incident about and returns what ends it once the
	// capture is done (nil when nothing must run during the capture).
	start func(l *lab.Lab) (stop func() error, err error)
}

// sustain keeps a flood's fresh SYNs coming for longer than the capture
// takes, so its counters move between samples.
const sustain = 6 * time.Second

// Incidents returns the incidents, in the order Run runs them.
func Incidents() []Incident {
	return []Incident{
		{
			Name:  "syn-flood-cookies-off",
			Title: "half-open clients fill a SYN queue, tcp_syncookies=0: SYNs dropped",
			Port:  8080, finding: analyze.IDSynQueueOverflow, severity: analyze.Critical,
			start: synFlood(0),
		},
		{
			Name:  "syn-flood-cookies-on",
			Title: "the same flood, tcp_syncookies=1: overflow answered with cookies",
			Port:  8080, finding: analyze.IDSyncookiesActive, severity: analyze.Warning,
			start: synFlood(1),
		},
		{
			Name:  "accept-queue-full",
			Title: "a service that never accepts: accept queue full, SYNs dropped",
			Port:  8081, finding: analyze.IDAcceptQueueOverflow, severity: analyze.Critical,
			start: func(l *lab.Lab) (func() error, error) {
				_, err := lab.AcceptQueueFull(l, lab.AcceptQueueOpts{Port: 8081, Backlog: 8})
				return nil, err
			},
		},
		{
			Name:  "healthy-busy",
			Title: "the control: a healthy service, 50 connections a second",
			Port:  8083, severity: analyze.Critical,
			start: func(l *lab.Lab) (func() error, error) {
				busy, err := lab.HealthyBusy(l, lab.BusyOpts{Port: 8083, Rate: 50, Window: sustain})
				if err != nil {
					return nil, err
				}
				return busy.StopHealthy, nil
			},
		},
	}
}

// synFlood is the half-open flood of lab.SYNFlood, backlog 16, with the
// given tcp_syncookies, sustained through the capture.
func synFlood(cookies int) func(l *lab.Lab) (func() error, error) {
	return func(l *lab.Lab) (func() error, error) {
		f, err := lab.SYNFlood(l, lab.SYNFloodOpts{Port: 8080, Backlog: 16, Syncookies: cookies, Sustain: sustain})
		if err != nil {
			return nil, err
		}
		return func() error { f.Stop(); return nil }, nil
	}
}

// Names lists the incidents' names.
func Names() []string {
	var names []string
	for _, i := range Incidents() {
		names = append(names, i.Name)
	}
	return names
}

// Select returns the named incidents in Run's order, or all of them for no
// names; an unknown name is an error that lists the known ones.
func Select(names []string) ([]Incident, error) {
	all := Incidents()
	if len(names) == 0 {
		return all, nil
	}
	for _, n := range names {
		if !slices.ContainsFunc(all, func(i Incident) bool { return i.Name == n }) {
			return nil, fmt.Errorf("unknown incident %q (known: %s)", n, strings.Join(Names(), ", "))
		}
	}
	return slices.DeleteFunc(all, func(i Incident) bool { return !slices.Contains(names, i.Name) }), nil
}

// expect is the diagnosis the incident must get in lab l: its finding on
// the service's listener, as the socket table prints it. With no lab (one
// that could not be opened) the listener is left empty, so an incident
// that errors still says what it would have expected.
func (inc Incident) expect(l *lab.Lab) Expectation {
	if inc.finding == "" {
		return Expectation{Below: inc.severity}
	}
	e := Expectation{Finding: inc.finding, Severity: inc.severity}
	if l != nil {
		e.Listener = netip.AddrPortFrom(l.ServerIP, inc.Port).String()
	}
	return e
}

// run brings the incident about, captures it while it lasts, then ends it.
func (inc Incident) run(l *lab.Lab, capture func() (string, error)) (string, error) {
	stop, err := inc.start(l)
	if err != nil {
		return "", err
	}
	path, err := capture()
	if stop != nil {
		err = errors.Join(err, stop())
	}
	return path, err
}
