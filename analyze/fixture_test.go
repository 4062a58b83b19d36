package analyze

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// fixture is a bundle in memory, loaded from a recorded bundle under
// testdata/ and then tweaked where the kernel state cannot be produced on
// this machine (each tweak follows a state observed in the lab on 6.18).
type fixture struct {
	t  testing.TB
	fs fstest.MapFS
}

func readTree(dir string) (fstest.MapFS, error) {
	m := fstest.MapFS{}
	root := os.DirFS(dir)
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	return m, err
}

// hostOnce holds testdata/host, read once per test binary.
var hostOnce = sync.OnceValues(func() (fstest.MapFS, error) { return readTree("testdata/host") })

// host is this machine, recorded healthy by snapdiag capture.
func host(t testing.TB) *fixture {
	t.Helper()
	base, err := hostOnce()
	if err != nil {
		t.Fatalf("load testdata/host: %v (record with go test -run TestRecord -update)", err)
	}
	m := make(fstest.MapFS, len(base))
	for k, v := range base {
		c := *v
		m[k] = &c
	}
	return &fixture{t: t, fs: m}
}

// small keeps only the sysctls the rules read, so fuzzing runs fast:
// fstest.MapFS lists a directory by scanning every file.
func (f *fixture) small() *fixture {
	for p := range f.fs {
		if strings.HasPrefix(p, bundle.DirSysctl+"/") && !strings.Contains(p, "/ipv4/tcp_") &&
			!strings.HasSuffix(p, "somaxconn") && !strings.HasPrefix(p, "proc/sys/fs/") &&
			!strings.HasSuffix(p, "ip_local_port_range") && !strings.HasSuffix(p, "nf_conntrack_max") &&
			!strings.HasSuffix(p, "netdev_max_backlog") {
			delete(f.fs, p)
		}
	}
	return f
}

func (f *fixture) samples() []int {
	var out []int
	for p := range f.fs {
		var i int
		if _, err := fmt.Sscanf(p, "samples/%03d/time", &i); err == nil {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out
}

func (f *fixture) set(p, data string) { f.fs[p] = &fstest.MapFile{Data: []byte(data), Mode: 0o644} }

func (f *fixture) sysctl(key, value string) *fixture {
	f.set(bundle.SysctlPath(key), value+"\n")
	return f
}

func (f *fixture) kernel(release string) *fixture {
	var m map[string]any
	if err := json.Unmarshal(f.fs[bundle.PathManifest].Data, &m); err != nil {
		f.t.Fatal(err)
	}
	m["host"].(map[string]any)["kernel_release"] = release
	b, _ := json.Marshal(m)
	f.fs[bundle.PathManifest].Data = b
	delete(f.fs, bundle.PathUname)
	return f
}

// ramp adds step*k to counter group.name in the k-th sample: a counter that
// moves by step per interval.
func (f *fixture) ramp(group, name string, step int64) *fixture {
	file := bundle.SampleNetstat
	if !strings.HasSuffix(group, "Ext") {
		file = bundle.SampleSNMP
	}
	for k, i := range f.samples() {
		p := bundle.SampleFile(i, file)
		c, err := parseNetstat(strings.NewReader(string(f.fs[p].Data)))
		if err != nil {
			f.t.Fatal(err)
		}
		if c[group] == nil {
			f.t.Fatalf("%s: no group %s", p, group)
		}
		if _, ok := c[group][name]; !ok {
			f.t.Fatalf("%s: no counter %s.%s", p, group, name)
		}
		c[group][name] += step * int64(k)
		f.set(p, formatNetstat(c))
	}
	return f
}

// flat sets group.name in every sample to its value in the first: a counter
// that did not move during the capture.
func (f *fixture) flat(group, name string) *fixture {
	file := bundle.SampleNetstat
	if !strings.HasSuffix(group, "Ext") {
		file = bundle.SampleSNMP
	}
	var v int64
	for k, i := range f.samples() {
		p := bundle.SampleFile(i, file)
		c, err := parseNetstat(strings.NewReader(string(f.fs[p].Data)))
		if err != nil {
			f.t.Fatal(err)
		}
		if k == 0 {
			v = c[group][name]
		}
		c[group][name] = v
		f.set(p, formatNetstat(c))
	}
	return f
}

// total adds n to every sample's value: history since boot.
func (f *fixture) total(group, name string, n int64) *fixture {
	file := bundle.SampleNetstat
	if !strings.HasSuffix(group, "Ext") {
		file = bundle.SampleSNMP
	}
	for _, i := range f.samples() {
		p := bundle.SampleFile(i, file)
		c, _ := parseNetstat(strings.NewReader(string(f.fs[p].Data)))
		c[group][name] += n
		f.set(p, formatNetstat(c))
	}
	return f
}

func formatNetstat(c Counters) string {
	var groups []string
	for g := range c {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	var b strings.Builder
	for _, g := range groups {
		var names []string
		for n := range c[g] {
			names = append(names, n)
		}
		sort.Strings(names)
		b.WriteString(g + ":")
		for _, n := range names {
			b.WriteString(" " + n)
		}
		b.WriteString("\n" + g + ":")
		for _, n := range names {
			fmt.Fprintf(&b, " %d", c[g][n])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// listeners sets every sample's listeners.json; per gives the sample's copy.
func (f *fixture) listeners(per func(k int) []bundle.Listener) *fixture {
	for k, i := range f.samples() {
		f.set(bundle.SampleFile(i, bundle.SampleListeners), string(bundle.EncodeListeners(per(k))))
	}
	return f
}

// listener is a listener like the lab's server (10.211.0.1:8080).
func listener(sendQ, recvQ uint32, synRecv int) bundle.Listener {
	return bundle.Listener{Proto: "tcp", Family: "inet", Local: "10.211.0.1:8080", Addr: "10.211.0.1", Port: 8080,
		SendQ: sendQ, RecvQ: recvQ, SynRecv: synRecv, Inode: 4242, Cookie: 77, PID: 1234, Comm: "dovecot"}
}

func (f *fixture) kmsg(lines ...string) *fixture {
	f.set(bundle.PathKmsg, strings.Join(lines, "\n")+"\n")
	return f
}

// softnetDrop makes CPU 0's dropped column rise by step per sample.
func (f *fixture) softnetDrop(step uint64) *fixture {
	for k, i := range f.samples() {
		p := bundle.SampleFile(i, bundle.SampleSoftnet)
		lines := strings.Split(strings.TrimRight(string(f.fs[p].Data), "\n"), "\n")
		cols := strings.Fields(lines[0])
		var v uint64
		fmt.Sscanf(cols[1], "%x", &v)
		cols[1] = fmt.Sprintf("%08x", v+step*uint64(k))
		lines[0] = strings.Join(cols, " ")
		f.set(p, strings.Join(lines, "\n")+"\n")
	}
	return f
}

func (f *fixture) snapshot() *Snapshot {
	f.t.Helper()
	s, err := Load(f.fs)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// report analyzes the fixture; the report must be valid against its
// schema, as analyze --format json writes it.
func (f *fixture) report() *Report {
	f.t.Helper()
	r := Analyze(f.snapshot(), "fixture", Rules())
	var b bytes.Buffer
	if err := RenderJSON(&b, r); err != nil {
		f.t.Fatal(err)
	}
	testutil.ValidateReport(f.t, b.Bytes())
	return r
}

// sampleDirs lists the sample folders present, for tests that drop some.
func (f *fixture) dropSamplesAfter(n int) *fixture {
	for p := range f.fs {
		var i int
		if _, err := fmt.Sscanf(p, "samples/%03d/", &i); err == nil && i >= n {
			delete(f.fs, p)
		}
	}
	return f
}
