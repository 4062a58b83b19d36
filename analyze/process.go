package analyze

import (
	"io"
	"io/fs"

	"github.com/snapdiag/snapdiag/bundle"
)

// ProcessState is a process that owned a listener at or near its backlog,
// as the bundle's processes.json and its copies of the kernel's
// proc/PID files show it.
type ProcessState struct {
	PID  int
	Comm string
	// Listeners are the listeners' ADDR:PORT that were at or near their
	// backlog when the process was collected.
	Listeners []string
	// OpenFiles counts its descriptors (entries of proc/PID/fd), -1 when
	// unknown; OpenFilesCapped makes it a lower bound.
	OpenFiles       int
	OpenFilesCapped bool
	// NoFile and NoFileHard are its RLIMIT_NOFILE (Unlimited when so), 0
	// when proc/PID/limits was not collected.
	NoFile, NoFileHard int64
	// Threads is how many threads it had; Tasks are those whose files were
	// copied.
	Threads int
	Tasks   []TaskState
	// Source is the member the process was read from.
	Source string
}

// TaskState is one thread of a process.
type TaskState struct {
	TID  int
	Comm string
	// State is the scheduler state letter of proc/PID/task/TID/stat: R
	// running, S sleeping, D uninterruptible, T stopped, Z zombie.
	State string
	// Wchan is the kernel function it sleeps in, "" when it runs or the
	// bundle lacks it; Stack is its kernel stack, innermost first, when the
	// bundle has it.
	Wchan string
	Stack []string
}

// AtFileLimit reports whether the process holds as many descriptors as its
// RLIMIT_NOFILE allows: the next accept() or open() fails with EMFILE
// (alloc_fd() refuses a descriptor at or past the soft limit).
func (p *ProcessState) AtFileLimit() bool {
	return p != nil && p.OpenFiles >= 0 && p.NoFile > 0 && int64(p.OpenFiles) >= p.NoFile
}

// process returns the bundle's record of process pid, or nil.
func (s *Snapshot) process(pid int) *ProcessState {
	if pid <= 0 {
		return nil
	}
	for _, p := range s.Processes {
		if p.PID == pid {
			return p
		}
	}
	return nil
}

// Bounds of loadProcesses: what it reads of one copied proc/PID file, and
// how many threads' files it reads in all (a collector copies 64 threads
// of each of 8 processes; a hostile processes.json may list millions).
const (
	maxProcessFile = 64 << 10
	maxLoadTasks   = 4096
)

// loadProcesses reads processes.json and the kernel files of each process
// it lists. A bundle of an earlier snapdiag has none: Processes stays nil
// and nothing is a gap.
func (s *Snapshot) loadProcesses(fsys fs.FS) {
	var ps []bundle.Process
	ok := s.read(fsys, bundle.PathProcesses, bundle.MaxProcessesFile, func(r io.Reader) error {
		var err error
		ps, err = bundle.DecodeProcesses(r)
		return err
	})
	if !ok {
		return
	}
	s.Processes = []*ProcessState{}
	tasks := 0
	for _, p := range ps {
		st := &ProcessState{PID: p.PID, Comm: p.Comm, Listeners: p.Listeners, OpenFiles: p.OpenFiles,
			OpenFilesCapped: p.OpenFilesCapped, Threads: p.Threads, Source: bundle.PathProcesses}
		s.read(fsys, bundle.ProcessFile(p.PID, bundle.ProcLimits), maxProcessFile, func(r io.Reader) error {
			l, err := parseProcLimits(r)
			if err == nil && l.Found {
				st.NoFile, st.NoFileHard = l.NoFileSoft, l.NoFileHard
			}
			return err
		})
		s.read(fsys, bundle.ProcessFile(p.PID, bundle.ProcStatus), maxProcessFile, func(r io.Reader) error {
			ps, err := parseProcStatus(r)
			if err == nil && st.Threads == 0 {
				st.Threads = ps.Threads
			}
			return err
		})
		for _, tid := range p.Tasks {
			if tasks++; tasks > maxLoadTasks {
				break
			}
			var t TaskState
			if !s.read(fsys, bundle.TaskFile(p.PID, tid, bundle.TaskStat), maxProcessFile, func(r io.Reader) error {
				ts, err := parseTaskStat(r)
				t = TaskState{TID: ts.TID, Comm: ts.Comm, State: ts.State}
				return err
			}) {
				continue
			}
			s.read(fsys, bundle.TaskFile(p.PID, tid, bundle.TaskWchan), maxProcessFile, func(r io.Reader) (err error) {
				t.Wchan, err = parseWchan(r)
				return err
			})
			s.read(fsys, bundle.TaskFile(p.PID, tid, bundle.TaskStack), maxProcessFile, func(r io.Reader) (err error) {
				t.Stack, err = parseStack(r)
				return err
			})
			st.Tasks = append(st.Tasks, t)
		}
		s.Processes = append(s.Processes, st)
	}
}
