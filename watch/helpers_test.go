package watch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/schema"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuilt()
	os.Exit(code)
}

func manifestOf(t testing.TB, members map[string][]byte) *bundle.Manifest {
	t.Helper()
	testutil.ValidateMembers(t, members)
	m, err := bundle.ParseManifest(members[bundle.PathManifest])
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// netstatValue reads one "Section.Name" counter from a /proc/net/netstat or
// snmp file.
func netstatValue(t testing.TB, data []byte, key string) int64 {
	t.Helper()
	section, name, _ := strings.Cut(key, ".")
	sc := bufio.NewScanner(bytes.NewReader(data))
	var header []string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != section+":" {
			continue
		}
		if header == nil {
			header = fields[1:]
			continue
		}
		for i, h := range header {
			if h == name && i+1 < len(fields) {
				v, err := strconv.ParseInt(fields[i+1], 10, 64)
				if err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				return v
			}
		}
		header = nil
	}
	t.Fatalf("no counter %s", key)
	return 0
}

// sampleTime reads sample i's time file.
func sampleTime(t testing.TB, members map[string][]byte, i int) time.Time {
	t.Helper()
	st, err := bundle.DecodeSampleTime(bytes.NewReader(members[bundle.SampleFile(i, bundle.SampleTimeFile)]))
	if err != nil {
		t.Fatalf("sample %d time: %v", i, err)
	}
	ts, err := time.Parse(time.RFC3339Nano, st.Wall)
	if err != nil {
		t.Fatalf("sample %d time: %v", i, err)
	}
	return ts
}

// quickCapture is a capture template that takes about a second: one counter
// sample, no packets.
func quickCapture(dir string) collectors.Options {
	h := collectors.DefaultHost()
	h.PacketWindow = 0
	return collectors.Options{Dir: dir, Samples: 1, Interval: 100 * time.Millisecond, Deadline: 5 * time.Second, Host: h}
}

// bundlesIn lists the bundles in dir, by name.
func bundlesIn(t testing.TB, dir string) []string {
	t.Helper()
	host, _ := os.Hostname()
	files, err := ListBundles(dir, host)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}

// logLines decodes a JSON log.
func logLines(t testing.TB, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		testutil.ValidateJSON(t, schema.WatchLog, []byte(line))
		out = append(out, m)
	}
	return out
}

func countMsg(lines []map[string]any, msg string) int {
	n := 0
	for _, l := range lines {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}
