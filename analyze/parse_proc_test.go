package analyze

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProcRecorded(t *testing.T) {
	st, err := parseProcStatus(bytes.NewReader(readTestdata(t, "proc/pid/status")))
	if err != nil || st.Name == "" || st.Threads < 1 || !strings.HasPrefix(st.State, "S") {
		t.Errorf("status = %+v, %v", st, err)
	}
	l, err := parseProcLimits(bytes.NewReader(readTestdata(t, "proc/pid/limits")))
	if err != nil || !l.Found || l.NoFileSoft != 65536 || l.NoFileHard != 65536 {
		t.Errorf("limits = %+v, %v; want 65536 65536", l, err)
	}
	ts, err := parseTaskStat(bytes.NewReader(readTestdata(t, "proc/pid/task/tid/stat")))
	if want := (taskStat{TID: 1, Comm: "process_api", State: "S"}); err != nil || ts != want {
		t.Errorf("stat = %+v, %v; want %+v", ts, err, want)
	}
	// A kernel that hides the wait channel writes "0".
	if w, err := parseWchan(bytes.NewReader(readTestdata(t, "proc/pid/task/tid/wchan"))); err != nil || w != "" {
		t.Errorf("wchan = %q, %v; want none", w, err)
	}
}

func TestParseProcLimits(t *testing.T) {
	tests := []struct {
		in      string
		want    procLimits
		wantErr bool
	}{
		{in: "Limit                     Soft Limit           Hard Limit           Units     \n" +
			"Max open files            1024                 524288               files     \n",
			want: procLimits{NoFileSoft: 1024, NoFileHard: 524288, Found: true}},
		{in: "Max open files            unlimited            unlimited            files\n",
			want: procLimits{NoFileSoft: Unlimited, NoFileHard: Unlimited, Found: true}},
		{in: "Max processes 10 10 processes\n"},
		{in: "Max open files            1024\n", wantErr: true},
		{in: "Max open files            -5 10 files\n", wantErr: true},
		{in: "Max open files            x 10 files\n", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseProcLimits(strings.NewReader(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" && !tt.wantErr {
			t.Errorf("%q (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseTaskStat(t *testing.T) {
	tests := []struct {
		in      string
		want    taskStat
		wantErr bool
	}{
		{in: "4242 (nginx: worker) S 1 2 3\n", want: taskStat{TID: 4242, Comm: "nginx: worker", State: "S"}},
		// The name is the thread's choice: a ")" in it must not end it.
		{in: "7 (a) b) D 1\n", want: taskStat{TID: 7, Comm: "a) b", State: "D"}},
		{in: "7 (x)\n", wantErr: true},
		{in: "(x) S\n", wantErr: true},
		{in: "0 (x) S\n", wantErr: true},
		{in: "7 x S\n", wantErr: true},
		{in: "7 (x) SS 1\n", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseTaskStat(strings.NewReader(tt.in))
		if (err != nil) != tt.wantErr || !tt.wantErr && got != tt.want {
			t.Errorf("parseTaskStat(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseWchanAndStack(t *testing.T) {
	for in, want := range map[string]string{"do_epoll_wait": "do_epoll_wait", "inet_csk_accept\n": "inet_csk_accept", "0": "", "": "", "a b": ""} {
		if got, err := parseWchan(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("parseWchan(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	stack := "[<0>] inet_csk_accept+0x1c5/0x2d0\n[<0>] inet_accept+0x42/0x110\n[<0>] do_accept+0xf1/0x170\n[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e\n"
	got, err := parseStack(strings.NewReader(stack))
	if diff := cmp.Diff([]string{"inet_csk_accept", "inet_accept", "do_accept", "entry_SYSCALL_64_after_hwframe"}, got); err != nil || diff != "" {
		t.Errorf("parseStack: %v (-want +got):\n%s", err, diff)
	}
	long := strings.Repeat("[<0>] f+0x1/0x2\n", 1000)
	if got, err := parseStack(strings.NewReader(long)); err != nil || len(got) != maxStackLines {
		t.Errorf("parseStack of 1000 frames: %d frames, %v; want %d", len(got), err, maxStackLines)
	}
}

func FuzzParseProcStatus(f *testing.F) {
	seedRecorded(f, "proc/pid/status")
	f.Add([]byte("Name:\tx\nThreads:\t-1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := parseProcStatus(bytes.NewReader(b)); err == nil && st.Threads < 0 {
			t.Fatalf("negative thread count %d", st.Threads)
		}
	})
}

func FuzzParseProcLimits(f *testing.F) {
	seedRecorded(f, "proc/pid/limits")
	f.Add([]byte("Max open files unlimited 5 files\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseProcLimits(bytes.NewReader(b))
		if err == nil && (l.NoFileSoft < Unlimited || l.NoFileHard < Unlimited) {
			t.Fatalf("limit below unlimited: %+v", l)
		}
	})
}

func FuzzParseTaskStat(f *testing.F) {
	seedRecorded(f, "proc/pid/task/tid/stat")
	f.Add([]byte("1 ()) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := parseTaskStat(bytes.NewReader(b))
		if err == nil && (ts.TID <= 0 || len(ts.State) != 1) {
			t.Fatalf("accepted %+v", ts)
		}
	})
}

func FuzzParseWchan(f *testing.F) {
	seedRecorded(f, "proc/pid/task/tid/wchan")
	f.Add([]byte("futex_wait_queue\n"))
	f.Add([]byte("[<0>] x+0x1/0x2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if w, err := parseWchan(bytes.NewReader(b)); err == nil && len(w) > 256 {
			t.Fatalf("wchan of %d bytes", len(w))
		}
		if st, err := parseStack(bytes.NewReader(b)); err == nil && len(st) > maxStackLines {
			t.Fatalf("%d frames", len(st))
		}
	})
}
