package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Members of the processes collector: the processes that own listeners whose
// accept queue was at or near its backlog. The kernel's own files keep their
// kernel paths (proc/PID/status, proc/PID/task/TID/stat); what the kernel
// has no file for, the open-file count, is in PathProcesses.
const (
	// PathProcesses lists the processes collected, one Process each.
	PathProcesses = "processes.json"

	// File names inside proc/PID (ProcessFile).
	ProcStatus = "status"
	ProcLimits = "limits"
	// File names inside proc/PID/task/TID (TaskFile). TaskStack is read
	// only where the kernel allows it (root, CONFIG_STACKTRACE).
	TaskStat  = "stat"
	TaskWchan = "wchan"
	TaskStack = "stack"
)

// ProcessFile is the member path of one of process pid's files:
// ProcessFile(42, ProcStatus) is proc/42/status.
func ProcessFile(pid int, name string) string {
	return "proc/" + strconv.Itoa(pid) + "/" + name
}

// TaskFile is the member path of one of thread tid's files in process pid:
// TaskFile(42, 43, TaskStat) is proc/42/task/43/stat.
func TaskFile(pid, tid int, name string) string {
	return "proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/" + name
}

// Process is one entry of processes.json: a process that owns a listener
// whose accept queue was at or near its backlog, and what was copied of it.
type Process struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// Listeners are the local ADDR:PORT of its listeners that were at or
	// near their backlog when it was collected.
	Listeners []string `json:"listeners"`
	// OpenFiles is the number of entries of proc/PID/fd, its open
	// descriptors; -1 when the directory could not be read. The kernel has
	// no file with this count.
	OpenFiles int `json:"open_files"`
	// OpenFilesCapped is true when counting stopped at the collector's
	// bound, so OpenFiles is a lower bound.
	OpenFilesCapped bool `json:"open_files_capped,omitempty"`
	// Threads is the number of threads listed in proc/PID/task; Tasks are
	// the thread ids whose files were copied (at most the collector's bound,
	// lowest first, so the main thread is among them).
	Threads int   `json:"threads"`
	Tasks   []int `json:"tasks"`
}

// Bounds of DecodeProcesses: the collector writes a few processes with at
// most a few hundred threads each.
const (
	MaxProcessesFile = 4 << 20
	MaxProcesses     = 1024
	MaxProcessTasks  = 4096
)

// EncodeProcesses encodes processes.json (PathProcesses): a JSON array with
// one process per line.
func EncodeProcesses(ps []Process) []byte {
	return encodeLines(ps, func(p *Process) {
		// Empty lists encode as [], never null, for readers in other languages.
		if p.Listeners == nil {
			p.Listeners = []string{}
		}
		if p.Tasks == nil {
			p.Tasks = []int{}
		}
	})
}

// encodeLines encodes xs as a JSON array with one element per line, so the
// file reads well with less and grep; fix, when not nil, adjusts a copy of
// each element before it is encoded.
func encodeLines[T any](xs []T, fix func(*T)) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	for i := range xs {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n")
		x := xs[i]
		if fix != nil {
			fix(&x)
		}
		data, _ := json.Marshal(&x) // the records hold strings, integers and booleans: they always encode
		b.Write(data)
	}
	if len(xs) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	return b.Bytes()
}

// DecodeProcesses decodes processes.json, reading at most MaxProcessesFile
// bytes of r. It refuses entries no collector writes: a pid or thread id
// that is not positive, or more than MaxProcesses processes or
// MaxProcessTasks threads of one.
func DecodeProcesses(r io.Reader) ([]Process, error) {
	var ps []Process
	dec := json.NewDecoder(io.LimitReader(r, MaxProcessesFile))
	if err := dec.Decode(&ps); err != nil {
		return nil, fmt.Errorf("decode %s: %w", PathProcesses, err)
	}
	if len(ps) > MaxProcesses {
		return nil, fmt.Errorf("decode %s: %d processes, more than %d", PathProcesses, len(ps), MaxProcesses)
	}
	for _, p := range ps {
		if p.PID <= 0 {
			return nil, fmt.Errorf("decode %s: pid %d", PathProcesses, p.PID)
		}
		if len(p.Tasks) > MaxProcessTasks {
			return nil, fmt.Errorf("decode %s: pid %d: %d threads, more than %d", PathProcesses, p.PID, len(p.Tasks), MaxProcessTasks)
		}
		for _, tid := range p.Tasks {
			if tid <= 0 {
				return nil, fmt.Errorf("decode %s: pid %d: thread id %d", PathProcesses, p.PID, tid)
			}
		}
	}
	return ps, nil
}
