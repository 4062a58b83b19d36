package analyze

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Bounds of the process files' parsers: the kernel writes a few KiB in each.
const (
	maxProcLine   = 4 << 10
	maxStackLines = 128
)

// procScanner scans lines of a process file, each at most maxProcLine bytes.
func procScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxProcLine)
	return sc
}

// procStatus is what the rules read of proc/PID/status.
type procStatus struct {
	Name    string
	State   string // "S (sleeping)"
	Threads int
}

// parseProcStatus reads proc/PID/status: lines "Key:\tvalue".
func parseProcStatus(r io.Reader) (procStatus, error) {
	var st procStatus
	sc := procScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Name":
			st.Name = val
		case "State":
			st.State = val
		case "Threads":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return procStatus{}, fmt.Errorf("threads %q: not a count", val)
			}
			st.Threads = n
		}
	}
	if err := sc.Err(); err != nil {
		return procStatus{}, fmt.Errorf("scan status: %w", err)
	}
	return st, nil
}

// Unlimited stands for "unlimited" in a resource limit.
const Unlimited int64 = -1

// procLimits is what the rules read of proc/PID/limits.
type procLimits struct {
	// NoFileSoft and NoFileHard are RLIMIT_NOFILE, Unlimited for
	// "unlimited"; Found is false when the file has no "Max open files".
	NoFileSoft, NoFileHard int64
	Found                  bool
}

// parseProcLimits reads proc/PID/limits. proc_pid_limits() prints a header
// and one line per limit, "%-25s %-20s %-20s %-10s": the name (several
// words), soft, hard, units.
func parseProcLimits(r io.Reader) (procLimits, error) {
	var l procLimits
	sc := procScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Max open files")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			return procLimits{}, fmt.Errorf("max open files %q: want soft and hard limits", rest)
		}
		var err error
		if l.NoFileSoft, err = parseLimit(f[0]); err != nil {
			return procLimits{}, fmt.Errorf("max open files soft limit: %w", err)
		}
		if l.NoFileHard, err = parseLimit(f[1]); err != nil {
			return procLimits{}, fmt.Errorf("max open files hard limit: %w", err)
		}
		l.Found = true
	}
	if err := sc.Err(); err != nil {
		return procLimits{}, fmt.Errorf("scan limits: %w", err)
	}
	return l, nil
}

func parseLimit(s string) (int64, error) {
	if s == "unlimited" {
		return Unlimited, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: not a limit", s)
	}
	return n, nil
}

// taskStat is what the rules read of proc/PID/task/TID/stat.
type taskStat struct {
	TID   int
	Comm  string
	State string // one letter: R, S, D, T, t, Z, X, I
}

// parseTaskStat reads proc/PID/task/TID/stat: "tid (comm) state ...". The
// name may hold spaces and parentheses (it is the thread's own choice, 16
// bytes at most), so it ends at the last ")".
func parseTaskStat(r io.Reader) (taskStat, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxProcLine))
	if err != nil {
		return taskStat{}, fmt.Errorf("read stat: %w", err)
	}
	open := bytes.IndexByte(data, '(')
	end := bytes.LastIndexByte(data, ')')
	if open < 1 || end < open {
		return taskStat{}, fmt.Errorf("stat %.40q: no (comm)", data)
	}
	tid, err := strconv.Atoi(string(bytes.TrimSpace(data[:open])))
	if err != nil || tid <= 0 {
		return taskStat{}, fmt.Errorf("stat %.40q: no thread id", data)
	}
	f := bytes.Fields(data[end+1:])
	if len(f) == 0 || len(f[0]) != 1 {
		return taskStat{}, fmt.Errorf("stat %.40q: no state", data)
	}
	return taskStat{TID: tid, Comm: string(data[open+1 : end]), State: string(f[0])}, nil
}

// parseWchan reads proc/PID/task/TID/wchan: the kernel function the thread
// sleeps in, or "0" (or nothing) when it runs or the kernel hides it.
func parseWchan(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxProcLine))
	if err != nil {
		return "", fmt.Errorf("read wchan: %w", err)
	}
	w := strings.TrimSpace(string(data))
	if w == "0" || strings.ContainsAny(w, " \t\n") || len(w) > 256 {
		return "", nil
	}
	return w, nil
}

// parseStack reads proc/PID/task/TID/stack: lines "[<0>] func+0x1c/0x80",
// the innermost frame first; it returns the function names, at most
// maxStackLines of them.
func parseStack(r io.Reader) ([]string, error) {
	var out []string
	sc := procScanner(r)
	for sc.Scan() && len(out) < maxStackLines {
		line := strings.TrimSpace(sc.Text())
		if _, rest, ok := strings.Cut(line, "] "); ok {
			line = rest
		}
		fn, _, _ := strings.Cut(line, "+")
		if fn = strings.TrimSpace(fn); fn != "" {
			out = append(out, fn)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan stack: %w", err)
	}
	return out, nil
}
