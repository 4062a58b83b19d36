package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/snapdiag/snapdiag/watch"
	"github.com/spf13/pflag"
)

// defaultStageBytes bounds what one capture stages on disk unless
// --stage-bytes says otherwise.
const defaultStageBytes = 512 << 20

// minDeadline is the shortest --deadline accepted: below it the part kept
// for writing the bundle leaves no time to collect anything, and such a value
// (1ns, 10us) is a typo, not a wish.
const minDeadline = 200 * time.Millisecond

// captureFlags are the settings of one capture, shared by snapdiag capture
// and snapdiag watch (which captures with them on every trigger): one
// definition, so the two commands spell and check them the same way.
type captureFlags struct {
	out        string
	ports      []int
	samples    int
	interval   time.Duration
	sample     time.Duration
	deadline   time.Duration
	socketCap  int
	maxPackets int
	payload    bool
	stageBytes watch.ByteSize
	procRoot   string
	// target is the network namespace to capture (--netns, --pid,
	// --container); zero for the process's own.
	target netns.Spec
}

// portList is --port: TCP port numbers, repeatable or comma-separated. Its
// own Set says what is wrong with a value in words, without the number
// parser's text.
type portList []int

func (p *portList) String() string {
	if len(*p) == 0 {
		return "" // no "(default [])" in the help
	}
	parts := make([]string, len(*p))
	for i, n := range *p {
		parts[i] = strconv.Itoa(n)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Set adds the ports of one --port value.
func (p *portList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q is not a TCP port (1-65535)", s)
		}
		*p = append(*p, n)
	}
	return nil
}

// Type is the placeholder help shows.
func (*portList) Type() string { return "port" }

// register adds the capture flags to fl, with their defaults.
func (f *captureFlags) register(fl *pflag.FlagSet) {
	f.stageBytes = defaultStageBytes
	fl.StringVar(&f.out, "out", "", "directory for bundles, created if missing (its parent must exist; default /var/lib/snapdiag when writable, else the current directory)")
	fl.Var((*portList)(&f.ports), "port", "service port to focus the capture on (repeatable, or comma-separated)")
	fl.IntVar(&f.samples, "samples", collectors.DefaultSamples, "counter samples a capture takes")
	fl.DurationVar(&f.interval, "interval", collectors.DefaultInterval, "time between counter samples")
	fl.DurationVar(&f.sample, "sample", collectors.DefaultPacketWin, "packet sample window, during the counter samples (0 disables)")
	fl.DurationVar(&f.deadline, "deadline", collectors.DefaultDeadline, "hard limit of one capture, at least 200ms; a partial bundle is still written")
	fl.IntVar(&f.socketCap, "socket-cap", collectors.DefaultSocketCap, "most rows in the socket table, at least 1 (the summary is never capped)")
	fl.IntVar(&f.maxPackets, "max-packets", collectors.DefaultPacketLimit, "most packets in the packet sample, shared equally between its seconds, at least 1 (--sample 0 for none)")
	fl.BoolVar(&f.payload, "payload", false, "keep packet payloads (default: headers only)")
	fl.Var(&f.stageBytes, "stage-bytes", "most bytes one capture may stage on disk")
	fl.StringVar(&f.target.NetNS, "netns", "", "capture this network namespace: an ip netns name, or a namespace file (/proc/PID/ns/net, a bind mount)")
	fl.IntVar(&f.target.PID, "pid", 0, "capture the network namespace of this process")
	fl.StringVar(&f.target.Container, "container", "", "capture the network namespace of this container: a Docker, containerd, CRI-O or Podman id, or a unique prefix of one")
	fl.StringVar(&f.procRoot, "proc", "/proc", "proc root to read (for tests)")
	_ = fl.MarkHidden("proc")
}

// validate reports the first capture flag out of its range as a usage error.
func (f captureFlags) validate() error {
	switch {
	case f.samples < 1 || f.samples > 10000:
		return usageError{fmt.Errorf("--samples must be between 1 and 10000, not %d", f.samples)}
	case f.interval <= 0:
		return usageError{fmt.Errorf("--interval must be positive")}
	case f.sample < 0:
		return usageError{fmt.Errorf("--sample must be 0 (off) or positive")}
	case f.deadline < minDeadline:
		return usageError{fmt.Errorf("--deadline must be at least %v, not %v", minDeadline, f.deadline)}
	case f.socketCap < 1:
		// The table cannot be turned off; its summary counts every socket.
		return usageError{fmt.Errorf("--socket-cap must be at least 1, not %d", f.socketCap)}
	case f.maxPackets < 1:
		return usageError{fmt.Errorf("--max-packets must be at least 1, not %d (--sample 0 captures no packets)", f.maxPackets)}
	case f.stageBytes <= 0:
		return usageError{fmt.Errorf("--stage-bytes must be positive")}
	}
	if err := f.target.Validate(); err != nil {
		return usageError{err}
	}
	for _, p := range f.ports {
		if p < 1 || p > 65535 {
			return usageError{fmt.Errorf("--port %d is not a TCP port", p)}
		}
	}
	return nil
}

// host is the Host the capture reads, with defaults for what the flags leave
// zero.
func (f captureFlags) host() collectors.Host {
	return collectors.Host{
		Proc:         f.procRoot,
		Ports:        f.ports,
		SocketCap:    f.socketCap,
		PacketWindow: f.sample,
		PacketLimit:  f.maxPackets,
		Payload:      f.payload,
	}.WithDefaults()
}

// options is the capture into dir that the flags describe; the caller adds
// the trigger.
func (f captureFlags) options(dir string) collectors.Options {
	v, c := buildInfo()
	return collectors.Options{
		Dir:      dir,
		Samples:  f.samples,
		Interval: f.interval,
		Deadline: f.deadline,
		Host:     f.host(),
		Tool:     bundle.Tool{Name: "snapdiag", Version: v, Commit: c},
		MaxBytes: int64(f.stageBytes),
	}
}
