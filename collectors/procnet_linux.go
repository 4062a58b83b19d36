package collectors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// onceFiles are read once per capture: tables that explain counters rather
// than count (the neighbour table for unreachable clients, the protocol memory
// table), and the /proc/net/stat files not sampled. /proc/net/nf_conntrack is
// deliberately not read: it lists every tracked connection and can be huge.
var onceFiles = []string{
	"net/protocols",
	"net/arp",
	"net/stat/arp_cache",
	"net/stat/ndisc_cache",
	"net/stat/synproxy",
	"net/stat/rt_cache",
	"net/if_inet6",
	"net/route",
	"net/ipv6_route",
	"net/netlink",
	"net/packet",
}

// ProcNet copies the /proc/net files that are read once per capture.
type ProcNet struct{}

// Name implements Collector.
func (ProcNet) Name() string { return "proc-net" }

// Collect implements Collector.
func (ProcNet) Collect(ctx context.Context, h Host, w *bundle.Writer) error {
	var missing, failed []string
	for _, rel := range onceFiles {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err := h.copyNet(w, rel, "proc/"+rel)
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, rel)
		default:
			failed = append(failed, err.Error())
		}
	}
	if len(missing) > 0 {
		w.Note("not on this kernel: %s", strings.Join(missing, ", "))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}
