package analyze

import (
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/bundle"
)

// task is one thread of a process fixture: state letter, wait channel and
// kernel stack as the kernel writes them.
type task struct {
	tid          int
	state, wchan string
	stack        string
}

// process adds processes.json with the process of listener() (pid 1234,
// dovecot), its limits and its threads' files.
func (f *fixture) process(open int, soft, hard string, threads int, tasks ...task) *fixture {
	p := bundle.Process{PID: 1234, Comm: "dovecot", Listeners: []string{"10.211.0.1:8080"}, OpenFiles: open, Threads: threads}
	for _, t := range tasks {
		p.Tasks = append(p.Tasks, t.tid)
		f.set(bundle.TaskFile(1234, t.tid, bundle.TaskStat), fmt.Sprintf("%d (dovecot) %s 1 1234 1234 0 -1\n", t.tid, t.state))
		f.set(bundle.TaskFile(1234, t.tid, bundle.TaskWchan), t.wchan)
		if t.stack != "" {
			f.set(bundle.TaskFile(1234, t.tid, bundle.TaskStack), t.stack)
		}
	}
	f.set(bundle.PathProcesses, string(bundle.EncodeProcesses([]bundle.Process{p})))
	f.set(bundle.ProcessFile(1234, bundle.ProcLimits), "Limit                     Soft Limit           Hard Limit           Units     \n"+
		fmt.Sprintf("Max open files            %-20s %-20s files     \n", soft, hard))
	f.set(bundle.ProcessFile(1234, bundle.ProcStatus), fmt.Sprintf("Name:\tdovecot\nState:\tS (sleeping)\nThreads:\t%d\n", threads))
	return f
}

// stuckListener is a listener whose accept queue stays full while
// ListenOverflows moves.
func stuckListener(t testing.TB) *fixture {
	return host(t).listeners(func(int) []bundle.Listener { return []bundle.Listener{listener(4, 5, 0)} }).
		ramp("TcpExt", "ListenOverflows", 3).ramp("TcpExt", "ListenDrops", 3)
}

func TestAcceptOutOfFiles(t *testing.T) {
	r := stuckListener(t).flat("Tcp", "PassiveOpens").
		process(1024, "1024", "524288", 2, task{1234, "S", "do_epoll_wait", ""}, task{1235, "S", "futex_wait_queue", ""}).report()

	f := findingByID(t, r, IDFDExhaustion)
	d := diagnosis[*ProcessFDExhaustion](t, f)
	want := &ProcessFDExhaustion{Severity: Critical, PID: 1234, Comm: "dovecot", OpenFiles: 1024, Limit: 1024, HardLimit: 524288,
		Listeners: []string{"10.211.0.1:8080"}, Source: "proc/1234/limits"}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("fd-exhaustion (-want +got):\n%s", diff)
	}
	if f.Listener != "10.211.0.1:8080" || f.Process == nil || f.Process.PID != 1234 {
		t.Errorf("fd-exhaustion names %q, %+v", f.Listener, f.Process)
	}
	rec := recByKey(f, "RLIMIT_NOFILE")
	if rec == nil || rec.Current != "1024" || rec.Value != "65536" ||
		!cmp.Equal(rec.Commands, []string{"prlimit --pid 1234 --nofile=65536:524288"}) { // the hard limit kept
		t.Errorf("RLIMIT_NOFILE remedy %+v", rec)
	}

	a := diagnosis[*AcceptQueueOverflow](t, findingByID(t, r, IDAcceptQueueOverflow))
	if a.State != AcceptNoFiles || a.Severity != Critical || a.Process == nil || !a.Process.AtFileLimit() {
		t.Errorf("accept queue: state %v, severity %v, process %+v; want AcceptNoFiles", a.State, a.Severity, a.Process)
	}
	af := findingByID(t, r, IDAcceptQueueOverflow)
	if recByKey(af, "RLIMIT_NOFILE") == nil {
		t.Error("the accept-queue finding does not recommend raising RLIMIT_NOFILE")
	}
	// Out of descriptors, a larger backlog is no remedy: the limit and the
	// leak are all there is to fix.
	var got []string
	for _, rec := range af.Recommendations {
		got = append(got, rec.Action+" "+rec.Key)
	}
	if diff := cmp.Diff([]string{"limit RLIMIT_NOFILE", "app "}, got); diff != "" {
		t.Errorf("remedies (-want +got):\n%s", diff)
	}
}

func TestAcceptNearFileLimit(t *testing.T) {
	r := stuckListener(t).flat("Tcp", "PassiveOpens").process(950, "1000", "1000", 1, task{1234, "S", "", ""}).report()
	if d := diagnosis[*ProcessFDExhaustion](t, findingByID(t, r, IDFDExhaustion)); d.Severity != Warning || d.OpenFiles != 950 {
		t.Errorf("950 of 1000 open: %+v, want a warning", d)
	}
	if a := diagnosis[*AcceptQueueOverflow](t, findingByID(t, r, IDAcceptQueueOverflow)); a.State != AcceptStuck {
		t.Errorf("state %v: below the limit accept() does not fail with EMFILE, want AcceptStuck", a.State)
	}
}

func TestAcceptStuckThreads(t *testing.T) {
	stack := "[<0>] futex_wait_queue+0x60/0x90\n[<0>] __futex_wait+0x14c/0x1c0\n[<0>] do_syscall_64+0x82/0x190\n"
	r := stuckListener(t).flat("Tcp", "PassiveOpens").
		process(12, "unlimited", "unlimited", 5,
			task{1234, "S", "futex_wait_queue", stack}, task{1235, "D", "io_schedule", ""},
			task{1236, "S", "futex_wait_queue", ""}, task{1237, "S", "futex_wait_queue", ""}).report()
	for _, f := range r.Findings {
		if f.ID == IDFDExhaustion {
			t.Errorf("fd-exhaustion with an unlimited RLIMIT_NOFILE: %s", f.Title)
		}
	}
	a := diagnosis[*AcceptQueueOverflow](t, findingByID(t, r, IDAcceptQueueOverflow))
	want := []ThreadWait{
		{State: "S", Wchan: "futex_wait_queue", TIDs: []int{1234, 1236, 1237}, Stack: []string{"futex_wait_queue", "__futex_wait", "do_syscall_64"}},
		{State: "D", Wchan: "io_schedule", TIDs: []int{1235}},
	}
	if diff := cmp.Diff(want, a.Waits); diff != "" || a.State != AcceptStuck || a.Process.Threads != 5 {
		t.Errorf("state %v, threads %d, waits (-want +got):\n%s", a.State, a.Process.Threads, diff)
	}
}

func TestAcceptTooSlowRates(t *testing.T) {
	r := stuckListener(t).ramp("Tcp", "PassiveOpens", 2).process(40, "1024", "1024", 4, task{1234, "R", "", ""}).report()
	a := diagnosis[*AcceptQueueOverflow](t, findingByID(t, r, IDAcceptQueueOverflow))
	if a.State != AcceptSlow || !a.Rates.OK {
		t.Fatalf("state %v, rates %+v; want AcceptSlow with rates", a.State, a.Rates)
	}
	// The queue is full at every sample, so every connection that entered
	// was accepted: accepts equal PassiveOpens' rate, and arrivals add
	// what ListenOverflows turned away.
	if !near(a.Rates.Accepted, a.PassiveOpens.PerSecond) || !near(a.Rates.Dropped, a.Overflows.PerSecond) ||
		!near(a.Rates.Arrived(), a.PassiveOpens.PerSecond+a.Overflows.PerSecond) || a.Rates.Dropped <= a.Rates.Accepted {
		t.Errorf("rates %+v against PassiveOpens %.1f/s, ListenOverflows %.1f/s", a.Rates, a.PassiveOpens.PerSecond, a.Overflows.PerSecond)
	}
	if recByKey(findingByID(t, r, IDAcceptQueueOverflow), "RLIMIT_NOFILE") != nil {
		t.Error("a slow acceptor with room for files is told to raise RLIMIT_NOFILE")
	}
}

func TestAcceptRatesQueueGrowth(t *testing.T) {
	// 10 connections entered in 2 s while the queue grew by 6: 4 accepted.
	r := acceptRates(Delta{OK: true, Delta: 10, PerSecond: 5, Seconds: 2}, Delta{OK: true, PerSecond: 1}, []uint32{0, 3, 6})
	if want := (AcceptRates{OK: true, Seconds: 2, Entered: 5, Accepted: 2, Dropped: 1}); r != want {
		t.Errorf("acceptRates = %+v, want %+v", r, want)
	}
	if r := acceptRates(Delta{OK: true, PerSecond: 5, Seconds: 2}, Delta{}, []uint32{4}); r.OK {
		t.Errorf("one sample gives rates: %+v", r)
	}
}

func TestSuggestNoFile(t *testing.T) {
	s := &Snapshot{Sysctls: Sysctls{}}
	for _, c := range []struct {
		soft int64
		open int
		want int64
	}{{64, 65, 65536}, {1024, 1024, 65536}, {65536, 65536, 262144}, {Unlimited, 10, 65536}} {
		if got := suggestNoFile(s, &ProcessState{NoFile: c.soft, OpenFiles: c.open}); got != c.want {
			t.Errorf("suggestNoFile(limit %d, open %d) = %d, want %d", c.soft, c.open, got, c.want)
		}
	}
	s.Sysctls["fs.nr_open"] = "100000"
	if got := suggestNoFile(s, &ProcessState{NoFile: 65536, OpenFiles: 65536}); got != 100000 {
		t.Errorf("suggestNoFile past fs.nr_open = %d, want 100000", got)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestLoadProcessesDamaged: a thread whose stat is damaged or missing is
// left out with a gap for the damage; the process and the others stay.
func TestLoadProcessesDamaged(t *testing.T) {
	f := stuckListener(t).flat("Tcp", "PassiveOpens").process(12, "1024", "1024", 3, task{1234, "S", "", ""}, task{1235, "S", "", ""})
	f.set(bundle.TaskFile(1234, 1235, bundle.TaskStat), "garbage")
	p := bundle.Process{PID: 1234, Comm: "dovecot", OpenFiles: 12, Threads: 3, Tasks: []int{1234, 1235, 1236}}
	f.set(bundle.PathProcesses, string(bundle.EncodeProcesses([]bundle.Process{p})))
	s := f.snapshot()
	if len(s.Processes) != 1 || len(s.Processes[0].Tasks) != 1 || s.Processes[0].Tasks[0].TID != 1234 || s.Processes[0].NoFile != 1024 {
		t.Fatalf("processes %+v", s.Processes)
	}
	gap := false
	for _, g := range s.Gaps {
		gap = gap || g.Path == bundle.TaskFile(1234, 1235, bundle.TaskStat)
	}
	if !gap {
		t.Errorf("no gap for the damaged stat: %+v", s.Gaps)
	}
}

// TestNoFileRemedyKeepsHardLimit: the remedy raises the soft limit and never
// lowers the hard one (systemd's default is 1024 soft, 524288 hard).
func TestNoFileRemedyKeepsHardLimit(t *testing.T) {
	s := host(t).snapshot()
	for _, tc := range []struct {
		hard int64
		want string
	}{
		{524288, "prlimit --pid 7 --nofile=65536:524288"},
		{Unlimited, "prlimit --pid 7 --nofile=65536:unlimited"},
		{1024, "prlimit --pid 7 --nofile=65536:65536"},
	} {
		recs := nofileRemedies(s, &ProcessState{PID: 7, Comm: "imap", OpenFiles: 1024, NoFile: 1024, NoFileHard: tc.hard})
		if len(recs) == 0 || recs[0].Key != "RLIMIT_NOFILE" || recs[0].Value != "65536" ||
			len(recs[0].Commands) != 1 || recs[0].Commands[0] != tc.want {
			t.Errorf("hard %d: remedy %+v, want the command %q", tc.hard, recs, tc.want)
		}
	}
}
