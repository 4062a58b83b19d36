package analyze

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
)

// FuzzRulesNeverPanic replaces a snapshot's counter files, listeners,
// sysctls and kernel log with fuzzed bytes: Load must not fail for them and
// no rule may panic (RunRules would turn a panic into a rule-error finding,
// which this test treats as a failure), and no control character from them
// may reach the text or markdown report.
func FuzzRulesNeverPanic(f *testing.F) {
	f.Add([]byte("TcpExt: ListenDrops\nTcpExt: 5\n"), []byte(`[{"local":"0.0.0.0:1","send_q":0,"syn_recv":1,"recv_q":9}]`), "0", "6.18.0", []byte("x"))
	f.Add([]byte("TcpExt: TCPReqQFullDoCookies SyncookiesSent\nTcpExt: -9 99999999999999\n"), []byte(`[]`), "2", "3.10.0", []byte(""))
	f.Add([]byte(""), []byte(`[{"local":"","port":-1,"send_q":4294967295,"syn_recv":-5}]`), "abc", "", []byte("0000 zz"))
	f.Fuzz(func(t *testing.T, counters, listeners []byte, cookies, kernel string, softnet []byte) {
		fx := host(t).small()
		for k, i := range fx.samples() {
			if k == 1 {
				fx.set(bundle.SampleFile(i, bundle.SampleNetstat), string(counters))
				fx.set(bundle.SampleFile(i, bundle.SampleSoftnet), string(softnet))
			}
			fx.set(bundle.SampleFile(i, bundle.SampleListeners), string(listeners))
		}
		fx.sysctl("net.ipv4.tcp_syncookies", cookies).sysctl("net.ipv4.ip_local_port_range", string(softnet))
		fx.kmsg(string(counters))
		if json.Valid([]byte(`"` + strings.ToValidUTF8(kernel, "") + `"`)) {
			fx.kernel(strings.ToValidUTF8(kernel, ""))
		}
		s, err := Load(fx.fs)
		if err != nil {
			t.Fatal(err)
		}
		r := Analyze(s, "fixture", Rules())
		for _, f := range r.Findings {
			if f.ID == IDRuleError {
				t.Fatalf("%s: %s", f.Title, f.Evidence[0].Note)
			}
		}
		renderedSafe(t, r)
	})
}

// FuzzLoadNeverFails feeds any bytes as any member: Load tolerates them,
// and the report renders with no control character.
func FuzzLoadNeverFails(f *testing.F) {
	f.Add("samples/000/time", []byte(`{"index":0,"monotonic_ns":-5}`))
	f.Add(bundle.PathSocketsTCP, []byte(`{"state":"SYN-RECV","local":"x"}`))
	f.Add(bundle.PathPackets, []byte("\xd4\xc3\xb2\xa1"))
	f.Add(bundle.PathSocketsSummary, []byte(`{"by_local_port":{"x":1}}`))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if !bundle.ValidName(name) || name == bundle.PathManifest {
			return
		}
		fx := host(t).small()
		fx.set(name, string(data))
		s, err := Load(fx.fs)
		if err != nil {
			t.Fatal(err)
		}
		r := Analyze(s, "fixture", Rules())
		for _, f := range r.Findings {
			if f.ID == IDRuleError {
				t.Fatalf("%s: %s", f.Title, f.Evidence[0].Note)
			}
		}
		renderedSafe(t, r)
	})
}
