package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/lab"
	"golang.org/x/sys/unix"
)

// TestAllNetNSFindsTheTwoSick runs capture --all-netns from the host's
// namespace over 200 lab namespaces that the host's /proc/net cannot see:
// 196 bare ones with a healthy listener, a lab whose listener's SYN queue
// overflows under a sustained flood (cookies off), and a lab whose listener
// never accepts (its accept queue full), each lab a server and a client
// namespace. Every one must be in the bundle with its listeners, counters
// and sysctls, and full detail (socket table, net.* tree, packet sample)
// must be taken for exactly the two sick ones.
func TestAllNetNSFindsTheTwoSick(t *testing.T) {
	testutil.NeedRoot(t, "capture --all-netns enters network namespaces")
	bin := testutil.Snapdiag(t) // built first: building is not the capture's time
	const healthy = 196
	many := lab.NewMany(t, lab.ManyOpts{N: healthy, Port: 8080})
	fl := lab.New(t, lab.Options{})
	flood, err := lab.SYNFlood(fl, lab.SYNFloodOpts{Port: 8080, Backlog: 16, Sustain: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Stop()
	al := lab.New(t, lab.Options{})
	if _, err := lab.AcceptQueueFull(al, lab.AcceptQueueOpts{Port: 8081, Backlog: 8, Clients: 20}); err != nil {
		t.Fatal(err)
	}
	ino := func(name string) uint64 {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(lab.NetnsDir, name), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	sick := map[uint64]string{ino(fl.Server): "SYN flood", ino(al.Server): "accept queue"}
	listeners := map[uint64]int{ino(fl.Server): 1, ino(al.Server): 1, ino(fl.Client): 0, ino(al.Client): 0}
	for _, name := range many.Names {
		listeners[ino(name)] = 1
	}
	if len(listeners) != healthy+4 {
		t.Fatalf("%d lab namespaces, want %d", len(listeners), healthy+4)
	}

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "capture", "--all-netns", "--out", dir, "-q").Output()
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	b := openBundle(t, lastLine(string(out)))
	m := b.Manifest()
	if st := m.Collector("all-netns"); st == nil || st.Status != bundle.StatusOK {
		t.Fatalf("all-netns collector: %+v", st)
	}
	ns := m.Namespaces
	if ns == nil {
		t.Fatal("manifest has no namespaces")
	}
	if ns.Count < len(listeners) || ns.Skipped != 0 {
		t.Errorf("namespaces count %d skipped %d, want at least %d found and none skipped", ns.Count, ns.Skipped, len(listeners))
	}
	seen := 0
	for _, e := range ns.Entries {
		want, ours := listeners[e.NetNS.Inode]
		if !ours {
			continue // another test's, or the host's containers
		}
		seen++
		if e.Dir != bundle.NetNSDir(e.NetNS.Inode) || e.NetNS.NamedBy != bundle.NamedByScan || len(e.Errors) > 0 {
			t.Errorf("namespace %s: dir %q named_by %q errors %q", e.NetNS.String(), e.Dir, e.NetNS.NamedBy, e.Errors)
		}
		if e.Listeners != want {
			t.Errorf("namespace %s: %d listeners, want %d", e.NetNS.String(), e.Listeners, want)
		}
		last := m.Options.Samples - 1
		data, err := b.ReadFile(bundle.NetNSFile(e.NetNS.Inode, bundle.SampleFile(last, bundle.SampleListeners)))
		if err != nil {
			t.Errorf("namespace %s: %v", e.NetNS.String(), err)
			continue
		}
		ls, err := bundle.DecodeListeners(bytes.NewReader(data))
		if err != nil || len(ls) != want {
			t.Errorf("namespace %s: listeners.json %d listeners (%v), want %d", e.NetNS.String(), len(ls), err, want)
		}
		for _, name := range []string{bundle.SampleFile(last, bundle.SampleNetstat), bundle.SampleFile(last, bundle.SampleSNMP), bundle.SysctlPath("net.core.somaxconn")} {
			if _, err := b.ReadFile(bundle.NetNSFile(e.NetNS.Inode, name)); err != nil {
				t.Errorf("namespace %s: %v", e.NetNS.String(), err)
			}
		}
		what, isSick := sick[e.NetNS.Inode]
		if e.Detail != isSick || (e.DetailReason != "") != isSick {
			t.Errorf("namespace %s (%s): detail %v reason %q, want detail %v", e.NetNS.String(), what, e.Detail, e.DetailReason, isSick)
		}
		if !isSick {
			continue
		}
		t.Logf("%s: %s: %s", what, e.NetNS.String(), e.DetailReason)
		if e.Packets == nil {
			t.Errorf("detail namespace %s: no packet sample in the manifest", e.NetNS.String())
		}
		for _, name := range []string{bundle.PathSocketsTCP, bundle.PathSocketsSummary, bundle.SysctlPath("net.ipv4.tcp_rmem"), bundle.PathPackets} {
			if _, err := b.ReadFile(bundle.NetNSFile(e.NetNS.Inode, name)); err != nil {
				t.Errorf("detail namespace %s: %v", e.NetNS.String(), err)
			}
		}
	}
	if seen != len(listeners) {
		t.Errorf("%d of the %d lab namespaces are in the manifest", seen, len(listeners))
	}
	// The host's own namespace is the top level, not repeated.
	if slices.ContainsFunc(ns.Entries, func(e bundle.NamespaceEntry) bool { return e.NetNS.Inode == m.Host.NetNSInode }) {
		t.Errorf("the capture's own namespace %d is among the entries", m.Host.NetNSInode)
	}
}

// TestAllNetNSNotRoot: a capture that may not enter the namespaces says so
// in one line, names what it missed in each entry, and still captures its
// own namespace.
func TestAllNetNSNotRoot(t *testing.T) {
	testutil.NeedRoot(t, "the test makes a namespace, then captures as nobody")
	many := lab.NewMany(t, lab.ManyOpts{N: 2, Port: 8080})
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	// nobody must be able to reach the binary: a copy in a folder of its
	// own, open to all.
	binDir := t.TempDir()
	data, err := os.ReadFile(testutil.Snapdiag(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "snapdiag")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{binDir, filepath.Dir(binDir), filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "capture", "--all-netns", "--out", dir, "--samples", "1", "--sample", "0", "-q")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("capture as nobody: %v", err)
	}
	b := openBundle(t, lastLine(string(out)))
	m := b.Manifest()
	st := m.Collector("all-netns")
	if st == nil || st.Status != bundle.StatusFailed || st.Error == "" {
		t.Fatalf("all-netns collector: %+v, want failed with one line", st)
	}
	if _, err := b.ReadFile(bundle.SampleFile(0, bundle.SampleNetstat)); err != nil {
		t.Errorf("own namespace not captured: %v", err)
	}
	var st0 unix.Stat_t
	if err := unix.Stat(many.Paths[0], &st0); err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Namespaces.Entries {
		if e.NetNS.Inode == st0.Ino {
			if len(e.Errors) == 0 || e.Detail {
				t.Errorf("entry %s: errors %q detail %v, want what was missed", e.NetNS.String(), e.Errors, e.Detail)
			}
			return
		}
	}
	t.Errorf("namespace %s (inode %s) not listed", many.Names[0], strconv.FormatUint(st0.Ino, 10))
}
