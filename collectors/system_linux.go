package collectors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/sys/unix"
)

// System copies the facts about the machine that frame the network evidence:
// uname, uptime, load, memory, boot id, CPU times.
type System struct{}

// Name implements Collector.
func (System) Name() string { return "system" }

// Collect implements Collector.
func (System) Collect(ctx context.Context, h Host, w *bundle.Writer) error {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	uname := strings.Join([]string{
		unix.ByteSliceToString(uts.Sysname[:]), unix.ByteSliceToString(uts.Nodename[:]),
		unix.ByteSliceToString(uts.Release[:]), unix.ByteSliceToString(uts.Version[:]),
		unix.ByteSliceToString(uts.Machine[:]),
	}, "\n") + "\n"
	if err := w.WriteFile(bundle.PathUname, []byte(uname)); err != nil {
		return err
	}
	var failed []string
	for _, f := range []struct{ src, name string }{
		{"uptime", bundle.PathUptime},
		{"loadavg", bundle.PathLoadavg},
		{"meminfo", bundle.PathMeminfo},
		{"stat", bundle.PathProcStat},
		{"sys/kernel/random/boot_id", bundle.PathBootID},
	} {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := copyFile(w, filepath.Join(h.Proc, f.src), f.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}

// trimNL returns the first line of data, trimmed.
func trimNL(data []byte) string {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	}
	return strings.TrimSpace(string(data))
}
