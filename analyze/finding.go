package analyze

import (
	"fmt"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// Severity orders findings: Info < Warning < Critical.
type Severity int

// Severities, from least to most severe.
const (
	Info Severity = iota
	Warning
	Critical
)

// String is the severity's name in the report: "info", "warning", "critical".
func (s Severity) String() string {
	switch s {
	case Critical:
		return "critical"
	case Warning:
		return "warning"
	default:
		return "info"
	}
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity reads "info", "warning" or "critical" (case-insensitive;
// "warn" and "crit" also work).
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "info":
		return Info, nil
	case "warning", "warn":
		return Warning, nil
	case "critical", "crit":
		return Critical, nil
	}
	return Info, fmt.Errorf("unknown severity %q (want info, warning or critical)", s)
}

// Finding ids. The ids of the report schema snapdiag.report/v1 are stable
// and must not be renamed; the others are additions of this package.
const (
	IDSynQueueOverflow    = "syn-queue-overflow"
	IDSyncookiesActive    = "syncookies-active"
	IDAcceptQueueOverflow = "accept-queue-overflow"
	IDHalfOpenClients     = "half-open-clients"
	IDUnreachableClients  = "unreachable-clients"
	IDConntrackFull       = "conntrack-full"
	IDTimeWaitOverflow    = "time-wait-overflow"
	IDEphemeralPorts      = "ephemeral-port-exhaustion"
	IDTCPMemoryPressure   = "tcp-memory-pressure"
	IDFDExhaustion        = "fd-exhaustion"
	IDSoftnetDrops        = "softnet-drops"
	IDNICRxDrops          = "nic-rx-drops"
	IDRiskySysctl         = "risky-sysctl"

	// IDListenDropsHistory is an info finding: listen-path drops happened
	// since boot, but not during the capture.
	IDListenDropsHistory = "listen-drops-history"
	// IDBundleIncomplete is an info finding: evidence the rules needed is
	// missing, so they said less.
	IDBundleIncomplete = "bundle-incomplete"
	// IDRuleError is a finding about a rule that failed.
	IDRuleError = "rule-error"
)

// Finding is one diagnosis with its evidence and remedies.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	// Listener is the listener's local ADDR:PORT as the socket table shows it.
	Listener string `json:"listener"`
	// Key names the sysctl the finding is about, where there is one.
	Key     string `json:"key"`
	Summary string `json:"summary"`
	// Process is the listener's process, when known (an addition to the v1 schema).
	Process *Process `json:"process,omitempty"`
	// NetNS is the network namespace the finding is about, with its
	// container and pod, for a finding in one namespace of a whole-node
	// bundle; nil for the host's own (an addition to the v1 schema).
	NetNS           *bundle.NetNS    `json:"netns,omitempty"`
	Evidence        []Evidence       `json:"evidence"`
	Recommendations []Recommendation `json:"recommendations"`
	// Diagnosis is what the rule found, in typed fields, from which the
	// title, summary, evidence and recommendations were written. It is for
	// programs and tests in Go; the JSON report carries the prose.
	Diagnosis Diagnosis `json:"-"`
}

// Process names the process that owns a listener.
type Process struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
}

// Evidence is one fact behind a finding: a counter's movement, a listener's
// queue, a log line, a packet-sample count.
type Evidence struct {
	Source    string  `json:"source"`
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Delta     float64 `json:"delta"`
	PerSecond float64 `json:"per_second"`
	Note      string  `json:"note"`
	// SampleScale, when set, says Value is estimated from a packet sample
	// that kept 1 packet in SampleScale: the sample's count times that.
	SampleScale float64 `json:"sample_scale,omitempty"`
}

// Recommendation is one remedy. Action is "sysctl" (Key, Current, Value,
// and Commands that run as they stand), "app" (the application's side, for
// the named process), "limit" (a process resource limit: Key, Current,
// Value), "network" (outside the host's TCP stack), "host" (the machine:
// NIC rings, CPUs, memory) or "capture" (capture again with other options
// to tell more); the report schema lists them.
type Recommendation struct {
	Action  string `json:"action"`
	Key     string `json:"key,omitempty"`
	Current string `json:"current,omitempty"`
	Value   string `json:"value,omitempty"`
	Why     string `json:"why"`
	// Commands are runnable as they stand; never null.
	Commands []string `json:"commands"`
	// Persist is the /etc/sysctl.d/ line that keeps a sysctl across reboots
	// (an addition to the v1 schema).
	Persist string `json:"persist,omitempty"`
	// Plan names the remedy the recommendation belongs to: "" (or
	// PlanPrimary) for the one snapdiag advises, PlanWithoutCookies for the
	// set that holds with tcp_syncookies=0 kept (an addition to the v1
	// schema).
	Plan string `json:"plan,omitempty"`
}

// Recommendation plans.
const (
	PlanPrimary        = "primary"
	PlanWithoutCookies = "without-cookies"
)

// KeyListenBacklog is the Key of an application recommendation that
// changes a listen backlog; its Value is the backlog to set.
const KeyListenBacklog = "listen.backlog"

// SysctlConfFile is where Persist lines are meant to go.
const SysctlConfFile = "/etc/sysctl.d/90-snapdiag.conf"

// evDelta is the evidence of a counter's movement.
func evDelta(d Delta, note string) Evidence {
	return Evidence{
		Source: d.Source, Metric: d.Counter.String(), Value: float64(d.Last),
		Delta: float64(d.Delta), PerSecond: round2(d.PerSecond), Note: note,
	}
}

// evValue is the evidence of one reading.
func evValue(source, metric string, v float64, note string) Evidence {
	return Evidence{Source: source, Metric: metric, Value: v, Note: note}
}

func round2(f float64) float64 {
	if f > 1e15 || f < -1e15 {
		return f
	}
	return float64(int64(f*100+0.5*sign(f))) / 100
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}
