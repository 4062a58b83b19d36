package collectors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// extraSysctls are read besides the whole net.* tree: the file-descriptor
// limits behind fd exhaustion, which usually presents as accept-queue overflow.
var extraSysctls = []string{"fs/file-max", "fs/file-nr", "fs/nr_open"}

// Sysctls copies every readable sysctl under net.* (per-netns values as the
// namespace the capture reads sees them) plus extraSysctls, raw, at their
// /proc/sys paths. For a namespace other than the process's own, the net.*
// keys the namespace does not show are the kernel's global ones (net.core's
// netdev_max_backlog, net.ipv4's tcp_mem): they are read from the process's
// namespace, and the manifest names them.
type Sysctls struct {
	info bundle.SysctlsInfo
}

// Name implements Collector.
func (*Sysctls) Name() string { return "sysctls" }

// Annotate implements Annotator.
func (s *Sysctls) Annotate(m *bundle.Manifest) { info := s.info; m.Sysctls = &info }

// sysctlWalk stores the sysctls under one /proc/sys root and counts them.
type sysctlWalk struct {
	w          *bundle.Writer
	root       string
	read       int
	unreadable []string
	// dirs, when not nil, collects the directories walked (relative to
	// root): a namespace's, against which the host's keys are matched.
	dirs map[string]bool
	// keys, when not nil, collects the keys walked, readable or not.
	keys map[string]bool
}

// store copies the sysctl at rel (relative to the root) into the bundle.
func (s *sysctlWalk) store(rel string) error {
	err := copyFile(s.w, filepath.Join(s.root, rel), bundle.DirSysctl+"/"+filepath.ToSlash(rel))
	switch {
	case err == nil:
		s.read++
	case errors.Is(err, bundle.ErrClosed), errors.Is(err, bundle.ErrTooLarge):
		return err
	default:
		// Some files refuse reads by design (net.ipv4.route.flush is
		// write-only; stable_secret answers EIO until set).
		s.unreadable = append(s.unreadable, rel)
	}
	return nil
}

// walk calls visit with every regular file under the root's net/, by its
// path relative to the root, and records what it cannot walk.
func (s *sysctlWalk) walk(ctx context.Context, visit func(rel string, d fs.DirEntry) error) error {
	top := filepath.Join(s.root, "net")
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == top {
				return err
			}
			rel, rerr := filepath.Rel(s.root, p)
			if rerr != nil {
				rel = p
			}
			s.unreadable = append(s.unreadable, rel)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if s.dirs != nil {
				s.dirs[rel] = true
			}
			return nil
		}
		if s.keys != nil {
			s.keys[rel] = true
		}
		if !d.Type().IsRegular() {
			// Never so in a real /proc/sys; in a copy, say so rather than
			// leave the key out silently.
			s.unreadable = append(s.unreadable, rel)
			return nil
		}
		return visit(rel, d)
	})
	if err != nil {
		return fmt.Errorf("walk %s: %w", top, err)
	}
	return nil
}

// storeReadable stores the key at rel unless its mode says nobody may read
// it (a write-only key).
func (s *sysctlWalk) storeReadable(rel string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil || info.Mode().Perm()&0o444 == 0 {
		return nil
	}
	return s.store(rel)
}

// Collect implements Collector.
func (s *Sysctls) Collect(ctx context.Context, h Host, w *bundle.Writer) error {
	sw := &sysctlWalk{w: w, root: filepath.Join(h.Proc, "sys")}
	var hostKeys []string
	var notIn error
	switch {
	case h.outside():
		// The fs.* keys below are still the host's and worth having.
		notIn = h.notEntered("net.* sysctls")
	case h.NS == nil:
		if err := sw.walk(ctx, sw.storeReadable); err != nil {
			return err
		}
	default:
		// /proc/sys/net is the opening thread's namespace's
		// (net_ctl_header_lookup() uses current's), so the namespace's
		// keys are walked and read on its thread.
		sw.dirs, sw.keys = map[string]bool{}, map[string]bool{}
		var err error
		if derr := h.NS.Do(func() { err = sw.walk(ctx, sw.storeReadable) }); derr != nil {
			err = derr
		}
		if err != nil {
			return err
		}
		if hostKeys, err = s.hostOnly(ctx, sw); err != nil {
			return err
		}
	}
	for _, rel := range extraSysctls {
		if _, err := os.Stat(filepath.Join(sw.root, rel)); err != nil {
			continue
		}
		if err := sw.store(rel); err != nil {
			return err
		}
	}
	unreadable := sw.unreadable
	s.info = bundle.SysctlsInfo{Read: sw.read, Unreadable: len(unreadable),
		UnreadableKeys: unreadable[:min(len(unreadable), bundle.MaxUnreadableKeys)]}
	if h.NS != nil {
		s.info.FromHost = len(hostKeys)
		s.info.FromHostKeys = hostKeys[:min(len(hostKeys), bundle.MaxFromHostKeys)]
	}
	if len(unreadable) > 0 {
		// Not an error: the values that matter were read. The note names
		// five; the manifest's unreadable_keys has more.
		list := strings.Join(unreadable[:min(len(unreadable), 5)], ", ")
		if more := len(unreadable) - 5; more > 0 {
			list += fmt.Sprintf(" and %d more", more)
		}
		w.Note("%d of %d sysctls unreadable: %s", len(unreadable), sw.read+len(unreadable), list)
	}
	if notIn != nil {
		return notIn
	}
	if len(hostKeys) > 0 {
		w.Note("%d net.* sysctls are global, not per namespace, and were read from the host (manifest sysctls.from_host_keys)", len(hostKeys))
	}
	return nil
}

// ReadSysctls reads the named sysctls (dotted: net.core.somaxconn) under h's
// proc root, for a live view that shows a few values at every sample rather
// than the whole tree; a sysctl the kernel lacks, or that cannot be read, is
// left out. Values are trimmed.
//
// With h.NS set, they are read on its thread: a net.* sysctl file resolves
// to the namespace of the thread that opens it.
func ReadSysctls(h Host, names []string) map[string]string {
	out := make(map[string]string, len(names))
	read := func() {
		for _, name := range names {
			data, err := readFile(filepath.Join(h.Proc, "sys", strings.ReplaceAll(name, ".", "/")))
			if err != nil {
				continue
			}
			out[name] = trimNL(data)
		}
	}
	switch {
	case h.outside():
		// Not entered: the files would show this process's own namespace.
	case h.NS == nil:
		read()
	default:
		_ = h.NS.Do(read) // closed: nothing read
	}
	return out
}

// hostOnly stores the keys of the process's own /proc/sys/net that the
// namespace walked in ns does not show but whose directory it does: the
// kernel registers its global net.* keys in the initial namespace only
// (net_core_table's netdev_max_backlog, ipv4_table's tcp_mem), and they
// hold for every namespace. A directory the namespace lacks altogether is
// another namespace's (net/ipv4/conf/eth0 of an interface it does not have)
// and is left out. It returns the keys stored.
func (s *Sysctls) hostOnly(ctx context.Context, ns *sysctlWalk) ([]string, error) {
	host := &sysctlWalk{w: ns.w, root: ns.root}
	var stored []string
	err := host.walk(ctx, func(rel string, d fs.DirEntry) error {
		if ns.keys[rel] || !ns.dirs[filepath.Dir(rel)] {
			return nil
		}
		before := host.read
		if err := host.storeReadable(rel, d); err != nil {
			return err
		}
		if host.read > before {
			stored = append(stored, rel)
		}
		return nil
	})
	ns.read += host.read
	return stored, err
}
