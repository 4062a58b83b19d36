package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/internal/netns"
	"github.com/spf13/cobra"
)

// openTarget resolves and enters the network namespace the flags name, and
// sets opts to read it; it returns nil, and leaves opts alone, when the flags
// name none. The caller closes the Target.
//
// A namespace that cannot be entered (setns(2) needs CAP_SYS_ADMIN) is still
// captured when a process in it is known (--pid, --container): its /proc/net
// counters and tables, read through /proc/PID/net, hold most of the
// listen-path evidence (the overflow and drop counters), and an incident
// does not wait for someone to come back as root. stderr is told, in one
// line, what the bundle then holds; each collector that could not read gets
// its own line from the capture. A namespace named only by a file (--netns)
// is read through the /proc/PID/net of a process in it; with none, nothing
// of it can be read, and the bundle holds only what is the host's, its
// manifest naming the namespace asked for and each collector's reason.
func openTarget(f captureFlags, opts *collectors.Options, stderr io.Writer) (*netns.Target, error) {
	if f.target.IsZero() {
		return nil, nil
	}
	t, err := netns.Open(f.procRoot, f.target)
	if err != nil {
		var hint string
		switch {
		case f.target.Container != "":
			hint = "docker ps or crictl ps show the running containers' ids; snapdiag capture --container <TAB> completes them"
		case f.target.PID != 0:
			hint = "--pid needs a running process; lsns -t net lists each namespace's processes"
		default:
			hint = "ip netns list names the namespaces; lsns -t net shows each one's processes"
		}
		if errors.Is(err, fs.ErrPermission) {
			hint = "run as root: another user's namespace file can be opened only with CAP_SYS_PTRACE (and /run/netns only by root)"
		}
		return nil, hintError{err, hint}
	}
	n := t.NetNS
	opts.NetNS = &n
	switch dir := t.ProcDir(f.procRoot); {
	case t.Thread != nil:
		opts.Host.NS = t.Thread
	case dir == "":
		// Nothing of it can be read: the bundle still says which namespace
		// was asked for and why each of its collectors failed, beside the
		// host's kernel log and system files.
		opts.Host.NSErr = t.EnterErr
		fmt.Fprintf(stderr, "snapdiag: cannot enter the network namespace of %s (%v), and no process in it is known to read it through: the bundle holds only the host's kernel log, system files and fs.* sysctls, nothing of the namespace (run as root, or grant CAP_SYS_ADMIN)\n",
			n.String(), t.EnterErr)
	default:
		opts.Host.NSProc, opts.Host.NSErr = dir, t.EnterErr
		fmt.Fprintf(stderr, "snapdiag: cannot enter the network namespace of %s (%v): the bundle holds its /proc/net counters and tables, read through %s/net, and the host's kernel log and system files, but not its listeners, socket table, net.* sysctls or packets (run as root, or grant CAP_SYS_ADMIN, for those)\n",
			n.String(), t.EnterErr, dir)
	}
	return t, nil
}

// completeNetns offers the ip netns names; a value with a slash is a path
// to a namespace file, and completes as files do.
func completeNetns(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if strings.Contains(toComplete, "/") {
		return nil, cobra.ShellCompDirectiveDefault
	}
	ents, err := os.ReadDir(netns.RunDir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), toComplete) {
			out = append(out, e.Name())
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeContainers offers the short ids of the containers whose processes
// run on this host, each described by its name (or pod) when known.
func completeContainers(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	proc := "/proc"
	if cmd != nil {
		if f := cmd.Flags().Lookup("proc"); f != nil {
			proc = f.Value.String()
		}
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	seen := map[string]bool{}
	var out []cobra.Completion
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		o := netns.OwnerOf(proc, pid)
		if o == nil || o.ContainerID == "" || seen[o.ContainerID] {
			continue
		}
		seen[o.ContainerID] = true
		id := bundle.ShortID(o.ContainerID)
		if !strings.HasPrefix(id, toComplete) {
			continue
		}
		n := bundle.NetNS{Owner: o}
		out = append(out, cobra.CompletionWithDesc(id, n.String()))
	}
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}
