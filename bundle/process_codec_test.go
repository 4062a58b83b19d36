package bundle

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProcessesRoundTrip(t *testing.T) {
	if got := string(EncodeProcesses(nil)); got != "[]\n" {
		t.Errorf("no processes encode as %q, want \"[]\\n\"", got)
	}
	ps := []Process{
		{PID: 42, Comm: "nginx", Listeners: []string{"0.0.0.0:80", "[::]:80"}, OpenFiles: 1024, OpenFilesCapped: true,
			Threads: 300, Tasks: []int{42, 43}},
		{PID: 7, Comm: `we"ird`, Listeners: []string{}, OpenFiles: -1, Tasks: []int{}},
	}
	data := EncodeProcesses(ps)
	back, err := DecodeProcesses(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if diff := cmp.Diff(ps, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if n := strings.Count(string(data), "\n"); n != len(ps)+2 {
		t.Errorf("%d lines, want one per process and the brackets:\n%s", n, data)
	}
}

func TestDecodeProcessesRefuses(t *testing.T) {
	for _, in := range []string{
		`[{"pid":0}]`,
		`[{"pid":-3}]`,
		`[{"pid":1,"tasks":[0]}]`,
		`{"pid":1}`,
		`[{"pid":1,"tasks":[` + strings.Repeat("1,", MaxProcessTasks) + `1]}]`,
	} {
		if ps, err := DecodeProcesses(strings.NewReader(in)); err == nil {
			t.Errorf("DecodeProcesses(%.40q) = %+v, want an error", in, ps)
		}
	}
}

func TestProcessPaths(t *testing.T) {
	for _, p := range []string{ProcessFile(42, ProcStatus), TaskFile(42, 43, TaskStack)} {
		if !ValidName(p) {
			t.Errorf("%s is not a valid member name", p)
		}
	}
	if got, want := TaskFile(42, 43, TaskStat), "proc/42/task/43/stat"; got != want {
		t.Errorf("TaskFile = %s, want %s", got, want)
	}
}

func FuzzDecodeProcesses(f *testing.F) {
	f.Add(EncodeProcesses([]Process{{PID: 1, Comm: "x", Listeners: []string{"1.2.3.4:5"}, OpenFiles: 3, Threads: 1, Tasks: []int{1}}}))
	f.Add([]byte(`[{"pid":1,"tasks":[1,2,3]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := DecodeProcesses(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What decodes re-encodes to the same processes.
		back, err := DecodeProcesses(bytes.NewReader(EncodeProcesses(ps)))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(back) != len(ps) {
			t.Fatalf("%d processes, re-decoded %d", len(ps), len(back))
		}
	})
}
