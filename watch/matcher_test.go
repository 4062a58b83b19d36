package watch

import (
	"testing"
)

// TestParseMatchers: --webhook-match reads Alertmanager's syntax and
// selects alerts as Alertmanager's routes would.
func TestParseMatchers(t *testing.T) {
	labels := map[string]string{"alertname": "SnapdiagSynQueueNearLimit", "instance": "db1:9917", "severity": "warning"}
	for _, tc := range []struct {
		in      string
		matches bool
		wantErr bool
	}{
		{in: `alertname=~"SnapdiagSyn.*",instance="db1:9917"`, matches: true},
		{in: `{alertname=~"SnapdiagSyn.*", instance = "db1:9917"}`, matches: true},
		{in: `alertname=~"Syn.*"`, matches: false}, // anchored
		{in: `severity!="critical"`, matches: true},
		{in: `severity!~"warn.*"`, matches: false},
		{in: `team=""`, matches: true}, // an absent label is empty
		{in: `instance=db1:9917,`, matches: true},
		{in: `instance="db2:9917"`, matches: false},
		{in: ``, matches: true},
		{in: `alertname`, wantErr: true},
		{in: `9a="x"`, wantErr: true},
		{in: `a="x`, wantErr: true},
		{in: `a=~"("`, wantErr: true},
		{in: `a="x" b="y"`, wantErr: true},
	} {
		ms, err := ParseMatchers(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseMatchers(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got := ms.Matches(labels); got != tc.matches {
			t.Errorf("%s matches %v: %v, want %v", tc.in, labels, got, tc.matches)
		}
		again, err := ParseMatchers(ms.String())
		if err != nil || again.Matches(labels) != tc.matches {
			t.Errorf("%q written back as %s: %v, matches %v", tc.in, ms, err, again.Matches(labels))
		}
	}
}

// FuzzParseMatchers: --webhook-match is typed by a person, but a panic
// there would stop the watch; what parses matches without panicking.
func FuzzParseMatchers(f *testing.F) {
	for _, s := range []string{`alertname=~"SnapdiagSyn.*",instance="h:9"`, `{a!="b",c!~"d|e"}`, `a=b,`, `a="\n\"\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMatchers(s)
		if err != nil {
			return
		}
		ms.Matches(map[string]string{"a": s})
		_ = ms.String()
	})
}
