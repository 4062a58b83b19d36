package watch

import (
	"testing"
)

func TestParseMatchers(t *testing.T) {
	labels := map[string]string{"alertname": "SnapdiagSynQueueNearLimit", "instance": "db1:9917", "severity": "warning"}
	for _, tc := range []struct {
		in      string
		want    string // the matchers written back; "" with wantErr
		matches bool
		wantErr bool
	}{
		{in: `alertname=~"SnapdiagSyn.*",instance="db1:9917"`, want: `alertname=~"SnapdiagSyn.*",instance="db1:9917"`, matches: true},
		{in: `{alertname=~"SnapdiagSyn.*", instance = "db1:9917"}`, want: `alertname=~"SnapdiagSyn.*",instance="db1:9917"`, matches: true},
		{in: `alertname=~"Syn.*"`, want: `alertname=~"Syn.*"`, matches: false}, // anchored
		{in: `severity!="critical"`, want: `severity!="critical"`, matches: true},
		{in: `severity!~"warn.*"`, want: `severity!~"warn.*"`, matches: false},
		{in: `team=""`, want: `team=""`, matches: true}, // an absent label is empty
		{in: `instance=db1:9917,`, want: `instance="db1:9917"`, matches: true},
		{in: `a="x\"y\\z\n"`, want: `a="x\"y\\z\n"`, matches: false},
		{in: ``, want: ``, matches: true},
		{in: `alertname`, wantErr: true},
		{in: `alertname=="x"`, want: `alertname="=\"x\""`, matches: false},
		{in: `9a="x"`, wantErr: true},
		{in: `a="x`, wantErr: true},
		{in: `a=~"("`, wantErr: true},
		{in: `a="x" b="y"`, wantErr: true},
		{in: `{a="x"`, wantErr: true},
		{in: `a="\q"`, wantErr: true},
	} {
		ms, err := ParseMatchers(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseMatchers(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got := ms.String(); got != tc.want {
			t.Errorf("ParseMatchers(%q) = %s, want %s", tc.in, got, tc.want)
		}
		if got := ms.Matches(labels); got != tc.matches {
			t.Errorf("%s matches %v: %v, want %v", tc.in, labels, got, tc.matches)
		}
	}
}

// FuzzParseMatchers: no panic, and what parses writes back to matchers
// that parse to the same.
func FuzzParseMatchers(f *testing.F) {
	for _, s := range []string{`alertname=~"SnapdiagSyn.*",instance="h:9"`, `{a!="b",c!~"d|e"}`, `a=b,`, `a="\n\"\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMatchers(s)
		if err != nil {
			return
		}
		again, err := ParseMatchers(ms.String())
		if err != nil {
			t.Fatalf("%q parsed to %s, which does not parse: %v", s, ms, err)
		}
		if again.String() != ms.String() {
			t.Fatalf("%q: %s then %s", s, ms, again)
		}
		ms.Matches(map[string]string{"a": s})
	})
}
