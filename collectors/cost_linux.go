package collectors

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/sys/unix"
)

// The priority a capture lowers itself to (LowerPriority).
const (
	// LowNice is the nice value of a capture's threads. A nice-0 thread
	// weighs 1024 to the CFS/EEVDF scheduler and a nice-10 one 110, so
	// against one busy nice-0 thread per CPU the capture still gets about a
	// tenth of each CPU: a capture's few hundred CPU milliseconds meet a
	// deadline of seconds. SCHED_IDLE (weight 3) would get a third of a
	// percent and miss it.
	LowNice = 10
	// lowIOLevel is the last level of the best-effort disk class. The idle
	// class is not used: under a writing service it may never get the disk,
	// and the bundle's fsync must end before the deadline.
	lowIOLevel = 7
)

// ioprio_set(2) and ioprio_get(2) encoding (include/uapi/linux/ioprio.h).
const (
	ioprioWhoProcess = 1
	ioprioClassShift = 13
	ioprioClassBE    = 2
)

// LowPriority is the priority a process lowered itself to for a capture
// (LowerPriority), and the one to go back to for writing the bundle.
type LowPriority struct {
	// Applied is the priority the process runs at after LowerPriority.
	Applied bundle.Priority
	// nice and ioprio are the calling thread's before it was lowered.
	nice   int
	ioprio uintptr
}

// LowerPriority lowers the CPU and disk scheduling priority of every thread
// of this process so that a capture does not compete with the service it
// diagnoses: nice LowNice (or the nice value it has, if higher) and the
// best-effort disk class at its last level. Call it first thing in a process
// that does nothing but capture: nice and the I/O priority belong to each
// thread on Linux, not to the process (setpriority(PRIO_PROCESS, 0) changes
// only the calling thread), and a thread created later copies them from the
// thread that creates it (sched_fork(), copy_io()), so once every thread is
// changed the Go runtime's later threads follow.
//
// Applied says what the process then runs at, with Lowered set, and what
// failed in Error.
func LowerPriority() *LowPriority {
	l := &LowPriority{}
	tid := unix.Gettid()
	var errs []error
	var err error
	if l.nice, err = threadNice(tid); err != nil {
		errs = append(errs, err)
	}
	if l.ioprio, err = threadIOPrioRaw(tid); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		errs = append(errs, everyThread(lowerThread))
	}
	l.Applied = currentPriority()
	l.Applied.Lowered = true
	if err := errors.Join(errs...); err != nil {
		l.Applied.Error = err.Error()
	}
	return l
}

// Restore puts every thread back at the priority the process had before
// LowerPriority. A capture calls it when collecting ends, so that writing
// the bundle meets the deadline even when busy threads of nice 0 leave a
// nice-10 process a tenth of each CPU; the write is short. Raising the CPU
// priority back needs CAP_SYS_NICE (an unprivileged process may only lower
// it): without it Restore fails and the write runs low.
func (l *LowPriority) Restore() error {
	return everyThread(func(tid int) (bool, error) {
		changed := false
		nice, err := threadNice(tid)
		if err != nil {
			return false, err
		}
		if nice != l.nice {
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, l.nice); err != nil {
				return false, fmt.Errorf("setpriority thread %d: %w", tid, err)
			}
			changed = true
		}
		io, err := threadIOPrioRaw(tid)
		if err != nil {
			return changed, err
		}
		if io != l.ioprio {
			if err := setIOPrio(tid, l.ioprio); err != nil {
				return changed, err
			}
			changed = true
		}
		return changed, nil
	})
}

// everyThread calls set for every thread of the process until a pass
// changes nothing: threads may be created while the list is walked.
func everyThread(set func(tid int) (changed bool, err error)) error {
	var errs []error
	for pass := 0; pass < 5; pass++ {
		tids, err := threadIDs()
		if err != nil {
			return err
		}
		changed := 0
		for _, tid := range tids {
			c, err := set(tid)
			if err != nil && !errors.Is(err, unix.ESRCH) { // ESRCH: the thread has exited
				errs = append(errs, err)
			}
			if c {
				changed++
			}
		}
		if changed == 0 || len(errs) > 0 {
			break
		}
	}
	return errors.Join(errs...)
}

// lowerThread lowers thread tid's priority and reports whether it changed
// anything.
func lowerThread(tid int) (bool, error) {
	changed := false
	nice, err := threadNice(tid)
	if err != nil {
		return false, err
	}
	if nice < LowNice {
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, LowNice); err != nil {
			return false, fmt.Errorf("setpriority thread %d: %w", tid, err)
		}
		changed = true
	}
	class, level, err := threadIOPrio(tid)
	if err != nil {
		return changed, err
	}
	if class != bundle.IOClassIdle && (class != bundle.IOClassBestEffort || level < lowIOLevel) {
		if err := setIOPrio(tid, ioprioClassBE<<ioprioClassShift|lowIOLevel); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}

// setIOPrio sets thread tid's raw I/O priority (class << 13 | level).
func setIOPrio(tid int, prio uintptr) error {
	if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), prio); e != 0 {
		return fmt.Errorf("ioprio_set thread %d: %w", tid, e)
	}
	return nil
}

// threadNice returns the nice value of thread tid. The raw getpriority
// system call returns 20 - nice, so that it is never negative; glibc undoes
// that, the unix package does not.
func threadNice(tid int) (int, error) {
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return 0, fmt.Errorf("getpriority thread %d: %w", tid, err)
	}
	return 20 - raw, nil
}

// threadIOPrioRaw returns thread tid's raw I/O priority.
func threadIOPrioRaw(tid int) (uintptr, error) {
	r, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(tid), 0)
	if e != 0 {
		return 0, fmt.Errorf("ioprio_get thread %d: %w", tid, e)
	}
	return r, nil
}

// threadIOPrio returns the disk scheduling class and level of thread tid.
func threadIOPrio(tid int) (string, int, error) {
	r, err := threadIOPrioRaw(tid)
	if err != nil {
		return "", 0, err
	}
	class := []string{bundle.IOClassNone, bundle.IOClassRealtime, bundle.IOClassBestEffort, bundle.IOClassIdle}
	c := int(r >> ioprioClassShift)
	if c >= len(class) {
		return strconv.Itoa(c), int(r & 7), nil
	}
	return class[c], int(r & 7), nil
}

// currentPriority is the priority of the calling thread, which a capture's
// threads share.
func currentPriority() bundle.Priority {
	tid := unix.Gettid()
	var p bundle.Priority
	var errs []error
	var err error
	if p.Nice, err = threadNice(tid); err != nil {
		errs = append(errs, err)
	}
	if p.IOClass, p.IOLevel, err = threadIOPrio(tid); err != nil {
		errs = append(errs, err)
	}
	if p.IOClass == bundle.IOClassNone {
		// The class a thread never set: the block layer serves it as
		// best-effort at (nice + 20) / 5 (task_nice_ioprio()).
		p.IOLevel = (p.Nice + 20) / 5
	}
	if err := errors.Join(errs...); err != nil {
		p.Error = err.Error()
	}
	return p
}

// threadIDs lists this process's threads.
func threadIDs() ([]int, error) {
	const dir = "/proc/self/task"
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	tids := make([]int, 0, len(names))
	for _, n := range names {
		if tid, err := strconv.Atoi(n); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// costMeter measures a capture's own cost, from its start.
type costMeter struct {
	start time.Time
	ru    unix.Rusage
	scope string
}

// startCost starts measuring. It resets the process's peak RSS mark
// (writing 5 to /proc/self/clear_refs, Linux 4.0 and later), so the peak is
// the capture's even in a long-running watchdog; where that is refused the
// peak is the process's.
func startCost(start time.Time) costMeter {
	c := costMeter{start: start, scope: bundle.PeakSinceProcess}
	_ = unix.Getrusage(unix.RUSAGE_SELF, &c.ru)
	if os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil {
		c.scope = bundle.PeakSinceCapture
	}
	return c
}

// finish returns the cost from the start to end, at priority p. VmHWM is
// read rather than getrusage's ru_maxrss: ru_maxrss also keeps the peak of
// exited threads' memory maps (signal->maxrss) and cannot be reset.
func (c costMeter) finish(end time.Time, p bundle.Priority) *bundle.Cost {
	out := &bundle.Cost{WallMS: ms(end.Sub(c.start)), PeakRSSScope: c.scope, Priority: &p}
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) == nil {
		out.CPUUserMS = ms(tvDuration(ru.Utime) - tvDuration(c.ru.Utime))
		out.CPUSystemMS = ms(tvDuration(ru.Stime) - tvDuration(c.ru.Stime))
	}
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		out.PeakRSSKiB = statusKiB(data, "VmHWM")
	}
	if out.PeakRSSKiB == 0 {
		// No /proc: ru_maxrss, the process's peak.
		out.PeakRSSKiB, out.PeakRSSScope = ru.Maxrss, bundle.PeakSinceProcess
	}
	return out
}

func tvDuration(tv unix.Timeval) time.Duration {
	return time.Duration(tv.Sec)*time.Second + time.Duration(tv.Usec)*time.Microsecond
}

// statusKiB returns the value of the "name:   1234 kB" line of a
// /proc/PID/status, 0 when absent.
func statusKiB(status []byte, name string) int64 {
	v, _ := statusField(status, name)
	n, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	return n
}
