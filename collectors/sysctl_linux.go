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

// Sysctls copies every readable sysctl under net.* (per-netns values as this
// process's network namespace sees them) plus extraSysctls, raw, at their
// /proc/sys paths.
type Sysctls struct {
	info bundle.SysctlsInfo
}

// Name implements Collector.
func (*Sysctls) Name() string { return "sysctls" }

// Annotate implements Annotator.
func (s *Sysctls) Annotate(m *bundle.Manifest) { info := s.info; m.Sysctls = &info }

// Collect implements Collector.
func (s *Sysctls) Collect(ctx context.Context, h Host, w *bundle.Writer) error {
	root := filepath.Join(h.Proc, "sys")
	var unreadable []string
	read := 0
	store := func(rel string) error {
		err := copyFile(w, filepath.Join(root, rel), bundle.DirSysctl+"/"+filepath.ToSlash(rel))
		switch {
		case err == nil:
			read++
		case errors.Is(err, bundle.ErrClosed), errors.Is(err, bundle.ErrTooLarge):
			return err
		default:
			// Some files refuse reads by design (net.ipv4.route.flush is
			// write-only; stable_secret answers EIO until set).
			unreadable = append(unreadable, rel)
		}
		return nil
	}
	err := filepath.WalkDir(filepath.Join(root, "net"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == filepath.Join(root, "net") {
				return err
			}
			rel, rerr := filepath.Rel(root, p)
			if rerr != nil {
				rel = p
			}
			unreadable = append(unreadable, rel)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			// Never so in a real /proc/sys; in a copy, say so rather than
			// leave the key out silently.
			unreadable = append(unreadable, rel)
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm()&0o444 == 0 {
			return nil
		}
		return store(rel)
	})
	if err != nil {
		return fmt.Errorf("walk %s: %w", filepath.Join(root, "net"), err)
	}
	for _, rel := range extraSysctls {
		if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
			continue
		}
		if err := store(rel); err != nil {
			return err
		}
	}
	s.info = bundle.SysctlsInfo{Read: read, Unreadable: len(unreadable),
		UnreadableKeys: unreadable[:min(len(unreadable), bundle.MaxUnreadableKeys)]}
	if len(unreadable) > 0 {
		// Not an error: the values that matter were read. The note names
		// five; the manifest's unreadable_keys has more.
		list := strings.Join(unreadable[:min(len(unreadable), 5)], ", ")
		if more := len(unreadable) - 5; more > 0 {
			list += fmt.Sprintf(" and %d more", more)
		}
		w.Note("%d of %d sysctls unreadable: %s", len(unreadable), read+len(unreadable), list)
	}
	return nil
}

// ReadSysctls reads the named sysctls (dotted: net.core.somaxconn) under h's
// proc root, for a live view that shows a few values at every sample rather
// than the whole tree; a sysctl the kernel lacks, or that cannot be read, is
// left out. Values are trimmed.
func ReadSysctls(h Host, names []string) map[string]string {
	out := make(map[string]string, len(names))
	for _, name := range names {
		data, err := readFile(filepath.Join(h.Proc, "sys", strings.ReplaceAll(name, ".", "/")))
		if err != nil {
			continue
		}
		out[name] = trimNL(data)
	}
	return out
}
