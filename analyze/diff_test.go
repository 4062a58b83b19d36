package analyze

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/nodebundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/schema"
)

const (
	diffCookiesOff = "../fixtures/synflood-cookies-off-v4/bundle.tar.zst"
	diffCookiesOn  = "../fixtures/synflood-cookies-on-v4/bundle.tar.zst"
	diffHealthy    = "../fixtures/healthy-busy/bundle.tar.zst"
)

func loadForDiff(t *testing.T, p string) *Snapshot {
	t.Helper()
	s, err := LoadPath(p)
	if err != nil {
		t.Fatalf("load %s: %v", p, err)
	}
	return s
}

// diffJSON renders d as JSON and validates it against the diff schema.
func diffJSON(t *testing.T, d *Diff) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := RenderDiffJSON(&b, d); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ValidateJSON(t, schema.Diff, b.Bytes()); n != 1 {
		t.Errorf("%d diff documents, want 1", n)
	}
	return b.Bytes()
}

func findChange(d *Diff, change, id string) *FindingChange {
	for i := range d.Findings {
		if d.Findings[i].Change == change && d.Findings[i].ID == id {
			return &d.Findings[i]
		}
	}
	return nil
}

func rateOf(d *Diff, c Counter) *CounterRate {
	for i := range d.Counters {
		if d.Counters[i].Counter == c.String() {
			return &d.Counters[i]
		}
	}
	return nil
}

// TestDiffCookiesOffOn: a SYN flood recorded with cookies off against one
// with cookies on: tcp_syncookies 0 -> 1 heads the sysctls, the critical
// SYN-queue overflow and the risky-sysctl warning went away, cookies
// appeared, and the drop rates fell to 0 while the cookie rate rose.
func TestDiffCookiesOffOn(t *testing.T) {
	d := Compare(loadForDiff(t, diffCookiesOff), diffCookiesOff, loadForDiff(t, diffCookiesOn), diffCookiesOn, Rules())
	diffJSON(t, d)
	if len(d.Sysctls) == 0 || d.Sysctls[0].Key != "net.ipv4.tcp_syncookies" || !d.Sysctls[0].ListenPath ||
		d.Sysctls[0].A == nil || *d.Sysctls[0].A != "0" || d.Sysctls[0].B == nil || *d.Sysctls[0].B != "1" {
		t.Errorf("sysctls %+v, want net.ipv4.tcp_syncookies 0 -> 1 first", d.Sysctls)
	}
	if f := findChange(d, FindingGone, IDSynQueueOverflow); f == nil || f.Severity != Critical || f.Listener != "10.211.11.1:8080" {
		t.Errorf("syn-queue-overflow gone: %+v", f)
	}
	if f := findChange(d, FindingGone, IDRiskySysctl); f == nil || f.Key != "net.ipv4.tcp_syncookies" {
		t.Errorf("risky-sysctl gone: %+v", f)
	}
	if f := findChange(d, FindingAppeared, IDSyncookiesActive); f == nil || f.Severity != Warning {
		t.Errorf("syncookies-active appeared: %+v", f)
	}
	for _, c := range []Counter{tcpExtListenDrops, tcpExtTCPReqQFullDrop} {
		r := rateOf(d, c)
		if r == nil || r.A == nil || *r.A <= 0 || r.B == nil || *r.B != 0 || r.Ratio == nil || *r.Ratio != 0 {
			t.Errorf("%s: %+v, want a positive rate falling to 0", c, r)
		}
	}
	if r := rateOf(d, tcpExtTCPReqQFullDoCookies); r == nil || r.A == nil || *r.A != 0 || r.B == nil || *r.B <= 0 || r.Ratio != nil {
		t.Errorf("TCPReqQFullDoCookies: %+v, want 0 rising, no ratio", r)
	}
	// The two recordings ran in labs of other address plans: each
	// listener is in one bundle only.
	only := map[string]string{}
	for _, l := range d.Listeners {
		only[l.Listener] = l.Changed[0]
	}
	if only["10.211.11.1:8080"] != "only_a" || only["10.211.13.1:8080"] != "only_b" {
		t.Errorf("listeners %v", only)
	}
}

// TestDiffSame: a bundle against itself differs in nothing but the
// counters it lists with a ratio of 1.
func TestDiffSame(t *testing.T) {
	d := Compare(loadForDiff(t, diffCookiesOff), "a", loadForDiff(t, diffCookiesOff), "b", Rules())
	diffJSON(t, d)
	if len(d.Sysctls)+len(d.Listeners)+len(d.Findings) != 0 || d.Host != nil || d.Kernel != nil {
		t.Errorf("a bundle against itself: %+v", d)
	}
	for _, r := range d.Counters {
		if r.A == nil || r.B == nil || *r.A != *r.B || (*r.A > 0 && (r.Ratio == nil || *r.Ratio != 1)) {
			t.Errorf("%+v", r)
		}
	}
}

// TestDiffDeterministic: the same two bundles, loaded afresh, give the
// same JSON and the same text, byte for byte.
func TestDiffDeterministic(t *testing.T) {
	var js, txt [][]byte
	for range 3 {
		d := Compare(loadForDiff(t, diffHealthy), diffHealthy, loadForDiff(t, diffCookiesOff), diffCookiesOff, Rules())
		js = append(js, diffJSON(t, d))
		var b bytes.Buffer
		if err := RenderDiffText(&b, d, TextOptions{}); err != nil {
			t.Fatal(err)
		}
		txt = append(txt, b.Bytes())
	}
	for i := 1; i < len(js); i++ {
		if !bytes.Equal(js[0], js[i]) || !bytes.Equal(txt[0], txt[i]) {
			t.Fatalf("run %d differs:\n%s\n%s", i, txt[0], txt[i])
		}
	}
}

// TestDiffGoldenText: the text diff of the cookies-off and cookies-on
// recordings is testdata/diff-cookies.txt (re-written with -update).
func TestDiffGoldenText(t *testing.T) {
	d := Compare(loadForDiff(t, diffCookiesOff), diffCookiesOff, loadForDiff(t, diffCookiesOn), diffCookiesOn, Rules())
	var b bytes.Buffer
	if err := RenderDiffText(&b, d, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "diff-cookies.txt")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./analyze -run TestDiffGoldenText -update)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("text diff differs from %s:\n%s", golden, b.String())
	}
	var col bytes.Buffer
	if err := RenderDiffText(&col, d, TextOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(col.Bytes(), []byte(ansiReset)) || bytes.Contains(b.Bytes(), []byte("\x1b")) {
		t.Error("colour only when asked")
	}
}

// TestDiffDamagedB: every hostile bundle as B against a good A. Those the
// loader refuses are the command's exit 1; those read despite damage give
// a partial diff, B marked damaged and the damage among B's gaps, and
// render without panicking.
func TestDiffDamagedB(t *testing.T) {
	hostile, err := filepath.Glob("../fixtures/hostile/*")
	if err != nil {
		t.Fatal(err)
	}
	a := loadForDiff(t, diffCookiesOff)
	damaged := 0
	for _, p := range hostile {
		b, err := LoadPath(p)
		if err != nil {
			continue
		}
		d := Compare(a, diffCookiesOff, b, p, Rules())
		diffJSON(t, d)
		var txt bytes.Buffer
		if err := RenderDiffText(&txt, d, TextOptions{}); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		if b.Damage == nil {
			continue
		}
		damaged++
		gap := false
		for _, g := range d.Gaps {
			gap = gap || (g.Bundle == "b" && g.Path == p)
		}
		if !d.B.Damaged || !gap {
			t.Errorf("%s: damaged %v, gaps %+v: want B damaged and its damage a gap", p, d.B.Damaged, d.Gaps)
		}
		if !errors.Is(b.Damage, bundle.ErrTruncated) && !errors.Is(b.Damage, bundle.ErrCorrupt) {
			t.Errorf("%s: damage %v", p, b.Damage)
		}
	}
	if damaged == 0 {
		t.Fatal("no hostile bundle was read despite damage: the test compared nothing partial")
	}
}

// TestDiffTruncatedB: B is a real recording cut short in its sysctls. The
// diff still compares what B kept (the findings, the counters), lists no
// sysctl as removed for want of the lost ones, and says how many were lost.
func TestDiffTruncatedB(t *testing.T) {
	data, err := os.ReadFile(diffCookiesOn)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.tar.zst")
	if err := os.WriteFile(cut, data[:len(data)*6/10], 0o644); err != nil {
		t.Fatal(err)
	}
	b := loadForDiff(t, cut)
	if b.Damage == nil {
		t.Fatal("the cut bundle was read whole")
	}
	d := Compare(loadForDiff(t, diffCookiesOff), diffCookiesOff, b, cut, Rules())
	diffJSON(t, d)
	if !d.B.Damaged {
		t.Error("B not marked damaged")
	}
	for _, s := range d.Sysctls {
		if s.B == nil {
			t.Errorf("%s listed as absent from B: it was lost to the damage", s.Key)
		}
	}
	lost := false
	for _, g := range d.Gaps {
		lost = lost || (g.Bundle == "b" && g.Path == bundle.DirSysctl)
	}
	if !lost {
		t.Errorf("gaps %+v: want B's lost sysctls stated", d.Gaps)
	}
	if f := findChange(d, FindingGone, IDSynQueueOverflow); f == nil {
		t.Error("syn-queue-overflow gone: not compared past the damage")
	}
	if r := rateOf(d, tcpExtListenDrops); r == nil || r.B == nil {
		t.Errorf("ListenDrops %+v: B's samples were kept, want its rate", r)
	}
}

// TestDiffWholeNode: two whole-node bundles whose pod web-1 was flooded
// with cookies off in A and on in B, and a pod only in B: the namespace is
// matched by inode and shows its own tcp_syncookies 0 -> 1, the pod only
// in B is listed, and the overflow gone is the namespace's.
func TestDiffWholeNode(t *testing.T) {
	web0 := nodebundle.Pod(4026532101, "shop", "web-0", "web")
	web1 := nodebundle.Pod(4026532102, "shop", "web-1", "web")
	web2 := nodebundle.Pod(4026532103, "shop", "web-2", "web")
	pa := nodebundle.Write(t, t.TempDir(), diffHealthy, []nodebundle.Namespace{
		{NetNS: web0, From: diffHealthy}, {NetNS: web1, From: diffCookiesOff, Detail: true}})
	pb := nodebundle.Write(t, t.TempDir(), diffHealthy, []nodebundle.Namespace{
		{NetNS: web0, From: diffHealthy}, {NetNS: web1, From: diffCookiesOn, Detail: true}, {NetNS: web2, From: diffHealthy}})
	d := Compare(loadForDiff(t, pa), pa, loadForDiff(t, pb), pb, Rules())
	diffJSON(t, d)
	var got1, got2 *NamespaceDiff
	for i := range d.Namespaces {
		switch d.Namespaces[i].NetNS.Inode {
		case web0.Inode:
			t.Errorf("web-0, the same in both, listed: %+v", d.Namespaces[i])
		case web1.Inode:
			got1 = &d.Namespaces[i]
		case web2.Inode:
			got2 = &d.Namespaces[i]
		}
	}
	if got1 == nil || got1.Only != "" || len(got1.Sysctls) == 0 || got1.Sysctls[0].Key != "net.ipv4.tcp_syncookies" ||
		*got1.Sysctls[0].A != "0" || *got1.Sysctls[0].B != "1" {
		t.Errorf("web-1: %+v, want its own tcp_syncookies 0 -> 1", got1)
	}
	if got2 == nil || got2.Only != "b" {
		t.Errorf("web-2: %+v, want only in B", got2)
	}
	if len(d.Sysctls) != 0 {
		t.Errorf("host sysctls %+v: the host is the same bundle in both", d.Sysctls)
	}
	f := findChange(d, FindingGone, IDSynQueueOverflow)
	if f == nil || f.NetNS == nil || f.NetNS.Inode != web1.Inode {
		t.Errorf("syn-queue-overflow gone: %+v, want web-1's", f)
	}
}

// TestDiffTextEscapes: strings from the bundles (a host name, a process
// name, a sysctl value) cannot drive the terminal: the text diff shows
// their control characters made visible.
func TestDiffTextEscapes(t *testing.T) {
	a, b := loadForDiff(t, diffCookiesOff), loadForDiff(t, diffCookiesOn)
	b.Manifest.Host.Hostname = "evil\x1b]0;owned\x07"
	b.Sysctls["net.ipv4.tcp_syncookies"] = "1\x1b[2J"
	for i := range b.Samples {
		for j := range b.Samples[i].Listeners {
			b.Samples[i].Listeners[j].Comm = "x\x1b[31m"
		}
	}
	d := Compare(a, "a", b, "b", Rules())
	if d.Host == nil || d.Host.B != b.Manifest.Host.Hostname {
		t.Fatalf("host change %+v", d.Host)
	}
	var out bytes.Buffer
	if err := RenderDiffText(&out, d, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(out.Bytes(), "\x1b\x07") {
		t.Errorf("control characters reached the terminal:\n%q", out.String())
	}
	diffJSON(t, d)
}
