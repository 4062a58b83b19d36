package analyze

import (
	"bytes"
	"github.com/snapdiag/snapdiag/bundle"
	"os"
	"path/filepath"
	"testing"
)

// seedRecorded adds the recorded /proc file name to f's corpus when present.
func seedRecorded(f *testing.F, name string) {
	if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
		f.Add(b)
	}
}

func FuzzParseNetstat(f *testing.F) {
	seedRecorded(f, "proc/net/netstat")
	seedRecorded(f, "proc/net/snmp")
	f.Add([]byte("Tcp: A B\nTcp: 1 -1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseNetstat(bytes.NewReader(b))
		if err == nil && c == nil {
			t.Fatal("nil map without error")
		}
	})
}

func FuzzParseSNMP6(f *testing.F) {
	seedRecorded(f, "proc/net/snmp6")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseSNMP6(bytes.NewReader(b)) })
}

func FuzzParseSockstat(f *testing.F) {
	seedRecorded(f, "proc/net/sockstat")
	seedRecorded(f, "proc/net/sockstat6")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseSockstat(bytes.NewReader(b)) })
}

func FuzzParseSoftnet(f *testing.F) {
	seedRecorded(f, "proc/net/softnet_stat")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseSoftnet(bytes.NewReader(b)) })
}

func FuzzParseNetDev(f *testing.F) {
	seedRecorded(f, "proc/net/dev")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseNetDev(bytes.NewReader(b)) })
}

func FuzzParseConntrackStat(f *testing.F) {
	seedRecorded(f, "proc/net/stat/nf_conntrack")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseConntrackStat(bytes.NewReader(b)) })
}

func FuzzParseKernelRelease(f *testing.F) {
	for _, s := range []string{"6.18.44-fc-v657", "4.19.0-26-amd64", "3.10.0-1160.el7.x86_64", "99999999999999999999.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parseKernelRelease(s)
		if err == nil && !k.Known() {
			t.Fatalf("%q: no error but unknown version", s)
		}
	})
}

func FuzzParseKmsg(f *testing.F) {
	f.Add([]byte("6,1,2,-;TCP: Possible SYN flooding on port 1.2.3.4:80. Sending cookies.\n SUBSYSTEM=x\n[ 1.5] y\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseKmsg(bytes.NewReader(b)) })
}

func FuzzParseSocketsTCP(f *testing.F) {
	f.Add([]byte(`{"state":"SYN-RECV","local":"10.0.0.1:143","remote":"10.0.0.2:40000","retrans":2}` + "\n" +
		`{"state":"TIME-WAIT","local":"10.0.0.1:40002","remote":"10.0.0.9:80"}`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseSocketsTCP(bytes.NewReader(b), 32768, 60999) })
}

func FuzzParsePcap(f *testing.F) {
	f.Add(testPcap(f, 113))
	f.Add(testPcap(f, 1))
	f.Add(cookieFloodPcap(f, true))
	// A sample cut by its limit, with the listening ports' segments kept
	// and packets lost: every judgment path runs.
	info := &bundle.PacketsInfo{Filter: "x", StoppedBy: "packet limit", KernelDrops: 1,
		Keeps: &bundle.PacketKeeps{ListenPorts: []int{8080}}}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range []*bundle.PacketsInfo{nil, info} {
			pa, err := parsePcap(bytes.NewReader(b), in)
			if err != nil && pa == nil {
				continue
			}
			if n := pa.HalfOpen + pa.Undetermined + pa.Unanswered + pa.Completed; n > len(pa.Flows) {
				t.Fatalf("%d flows judged %d times", len(pa.Flows), n)
			}
			pa.Class()
			pa.SharedPrint()
		}
	})
}
