package collectors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/snapdiag/snapdiag/bundle"
)

// Bounds of the processes collector, used where a Processes field is 0.
const (
	// DefaultMaxProcesses bounds the processes collected.
	DefaultMaxProcesses = 8
	// DefaultMaxThreads bounds the threads of one process whose files are
	// copied.
	DefaultMaxThreads = 64
	// maxFDCount bounds the proc/PID/fd entries counted: past it the count
	// is a lower bound (Process.OpenFilesCapped).
	maxFDCount = 1 << 20
	// maxTaskList bounds the thread ids listed from proc/PID/task.
	maxTaskList = 1 << 16
)

// Processes is the "processes" Collector: the side of the application that
// does not accept. For the processes that own a listener whose accept queue
// is at or near its backlog (fullest first, at most MaxProcesses), it copies
// proc/PID/status and proc/PID/limits (RLIMIT_NOFILE), and for at most
// MaxThreads of their threads proc/PID/task/TID/stat, wchan and stack (where
// the kernel lets it be read), and counts their open descriptors into
// processes.json.
type Processes struct {
	MaxProcesses int
	MaxThreads   int
}

// Name implements Collector.
func (*Processes) Name() string { return "processes" }

// fullListener is a listener whose accept queue is at or near its backlog.
type fullListener struct {
	local      string
	inode      uint32
	cookie     uint64
	recvQ, max uint32
}

// nearBacklog reports whether an accept queue of recvQ connections is at or
// near its backlog: 90% of it or more. tcp_diag_get_info() reports a
// listener's sk_ack_backlog as its receive queue and sk_max_ack_backlog as
// its send queue; the queue is full when the first exceeds the second
// (sk_acceptq_is_full()), so a backlog of 0 is full with one connection.
func nearBacklog(recvQ, backlog uint32) bool {
	return recvQ > 0 && uint64(recvQ)*10 >= uint64(backlog)*9
}

// Collect implements Collector.
func (p *Processes) Collect(ctx context.Context, h Host, w *bundle.Writer) error {
	proc := cmp.Or(h.Proc, "/proc")
	// The capture's LISTEN sockets: the listeners sampler's first sample is
	// made of the same dump, so the kernel is not asked twice, and the
	// queues are all this needs, so it does not wait for the SYN-RECV
	// counts.
	ls, err := h.firstListenSockets(ctx)
	if err != nil {
		return err
	}
	var full []fullListener
	for _, l := range ls {
		if l.Inode == 0 || !nearBacklog(l.RecvQ, l.SendQ) {
			continue
		}
		full = append(full, fullListener{local: l.Local, inode: l.Inode, cookie: l.Cookie, recvQ: l.RecvQ, max: l.SendQ})
	}
	// Fullest first: when more processes own full listeners than the bound
	// allows, those with the worst queues are the ones kept.
	slices.SortFunc(full, func(a, b fullListener) int {
		return cmp.Or(cmp.Compare(uint64(b.recvQ)*uint64(a.max+1), uint64(a.recvQ)*uint64(b.max+1)), cmp.Compare(a.local, b.local))
	})
	want := make(map[uint32]uint64, len(full))
	for _, l := range full {
		want[l.inode] = l.cookie
	}
	var owners map[uint32]owner
	if len(want) > 0 {
		owners, _ = findSocketOwners(ctx, proc, want, maxOwnerLinks)
	}
	maxProcs := cmp.Or(p.MaxProcesses, DefaultMaxProcesses)
	var ps []bundle.Process
	index := map[int]int{}
	skipped := 0
	for _, l := range full {
		o, ok := owners[l.inode]
		if !ok {
			continue
		}
		i, seen := index[o.pid]
		if !seen {
			if len(ps) == maxProcs {
				skipped++
				continue
			}
			i = len(ps)
			index[o.pid] = i
			ps = append(ps, bundle.Process{PID: o.pid, Comm: o.comm})
		}
		ps[i].Listeners = append(ps[i].Listeners, l.local)
	}
	if skipped > 0 {
		w.Note("%d more full listeners' processes left out (at most %d processes)", skipped, maxProcs)
	}
	if len(full) > 0 && len(owners) < len(want) && ctx.Err() == nil {
		w.Note("owner not found for %d of %d listeners at their backlog: their processes are not collected", len(want)-len(owners), len(want))
	}
	var kept []bundle.Process
	for i := range ps {
		if ctx.Err() != nil {
			w.Note("processes cut by the %s: %d of %d collected", stopCause(ctx), len(kept), len(ps))
			break
		}
		ok, err := p.collectProcess(ctx, proc, &ps[i], w)
		if err != nil {
			return err
		}
		if ok {
			kept = append(kept, ps[i])
		}
	}
	return w.WriteFile(bundle.PathProcesses, bundle.EncodeProcesses(kept))
}

// collectProcess copies the files of one process and fills in its counts.
// It returns false when the process is gone, and an error only when the
// bundle could not be written.
func (p *Processes) collectProcess(ctx context.Context, proc string, pr *bundle.Process, w *bundle.Writer) (bool, error) {
	dir := filepath.Join(proc, strconv.Itoa(pr.PID))
	for _, name := range []string{bundle.ProcStatus, bundle.ProcLimits} {
		data, err := readFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			w.Note("process %d (%s) exited before it was collected", pr.PID, pr.Comm)
			return false, nil
		}
		if err != nil {
			w.Note("%v", err)
			continue
		}
		if err := w.WriteFile(bundle.ProcessFile(pr.PID, name), data); err != nil {
			return false, err
		}
	}
	n, capped, err := countEntries(ctx, filepath.Join(dir, "fd"), maxFDCount)
	pr.OpenFiles, pr.OpenFilesCapped = n, capped
	if err != nil {
		// Another user's process, without CAP_SYS_PTRACE: proc_fd_access_allowed()
		// hides its descriptors.
		pr.OpenFiles = -1
		w.Note("count open files of process %d: %v", pr.PID, err)
	}
	tids, total, err := listTasks(filepath.Join(dir, "task"), cmp.Or(p.MaxThreads, DefaultMaxThreads))
	if err != nil {
		w.Note("list threads of process %d: %v", pr.PID, err)
	}
	pr.Threads = total
	noStack := 0
	for _, tid := range tids {
		if ctx.Err() != nil {
			break
		}
		tdir := filepath.Join(dir, "task", strconv.Itoa(tid))
		data, err := readFile(filepath.Join(tdir, bundle.TaskStat))
		if err != nil {
			continue // the thread exited meanwhile
		}
		if err := w.WriteFile(bundle.TaskFile(pr.PID, tid, bundle.TaskStat), data); err != nil {
			return false, err
		}
		pr.Tasks = append(pr.Tasks, tid)
		for _, name := range []string{bundle.TaskWchan, bundle.TaskStack} {
			// proc_pid_stack() needs CAP_SYS_ADMIN and a kernel with
			// CONFIG_STACKTRACE; wchan needs ptrace read access. Either may
			// be refused: the thread's state in stat is still there.
			data, err := readFile(filepath.Join(tdir, name))
			if err != nil {
				if name == bundle.TaskStack {
					noStack++
				}
				continue
			}
			if err := w.WriteFile(bundle.TaskFile(pr.PID, tid, name), data); err != nil {
				return false, err
			}
		}
	}
	if noStack > 0 {
		w.Note("kernel stacks of %d threads of process %d not readable (root and CONFIG_STACKTRACE needed)", noStack, pr.PID)
	}
	return true, nil
}

// countEntries counts the entries of directory dir, at most limit of them,
// reporting whether it stopped at the limit.
func countEntries(ctx context.Context, dir string, limit int) (int, bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	n := 0
	for n < limit {
		if ctx.Err() != nil {
			return n, true, nil
		}
		names, err := f.Readdirnames(1024)
		n += len(names)
		if errors.Is(err, io.EOF) {
			return min(n, limit), n > limit, nil
		}
		if err != nil {
			return n, false, fmt.Errorf("read %s: %w", dir, err)
		}
	}
	return limit, true, nil
}

// listTasks returns limit thread ids of proc/PID/task, the main thread's
// and then the lowest, and how many threads it lists (at most maxTaskList are looked at).
func listTasks(dir string, limit int) ([]int, int, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var tids []int
	for len(tids) < maxTaskList {
		names, err := f.Readdirnames(1024)
		for _, name := range names {
			if tid, err := strconv.Atoi(name); err == nil && tid > 0 {
				tids = append(tids, tid)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", dir, err)
		}
	}
	// The main thread (tid = pid) first, then ascending: once thread ids
	// wrap around pid_max, the main thread is not the lowest.
	main, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	slices.SortFunc(tids, func(a, b int) int {
		switch {
		case a == b:
			return 0
		case a == main:
			return -1
		case b == main:
			return 1
		}
		return cmp.Compare(a, b)
	})
	return tids[:min(len(tids), limit)], len(tids), nil
}
