package collectors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/snapdiag/snapdiag/bundle"
)

// counterFiles are the cumulative counters read at every sample, raw. The
// first ones are required: without them a sample says nothing.
var counterFiles = []struct {
	name     string // member inside the sample folder, also the path under the proc root
	required bool
}{
	{bundle.SampleNetstat, true},
	{bundle.SampleSNMP, true},
	{bundle.SampleSNMP6, false}, // absent without IPv6
	{bundle.SampleSockstat, true},
	{bundle.SampleSockstat6, false},
	{bundle.SampleSoftnet, false},
	{bundle.SampleDev, false},
	{bundle.SampleConntrack, false}, // absent without nf_conntrack
	{bundle.SampleCTCount, false},
}

// Counters reads the kernel's network counters at every sample. Counters are
// cumulative since boot, so only the differences between samples say what is
// happening now; the files are stored exactly as read.
type Counters struct{}

// Name implements Sampler.
func (Counters) Name() string { return "counters" }

// Sample implements Sampler.
func (Counters) Sample(ctx context.Context, h Host, i int, w *bundle.Writer) error {
	var missing, failed []string
	for _, f := range counterFiles {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// proc/net/... is read under the proc root; "proc/" is the member prefix.
		err := h.copyNet(w, strings.TrimPrefix(f.name, "proc/"), bundle.SampleFile(i, f.name))
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist) && !f.required:
			if i == 0 {
				missing = append(missing, f.name)
			}
		case errors.Is(err, fs.ErrNotExist):
			failed = append(failed, err.Error())
		default:
			failed = append(failed, err.Error())
		}
	}
	if len(missing) > 0 {
		w.Note("not on this kernel: %s", strings.Join(missing, ", "))
	}
	if len(failed) > 0 {
		return fmt.Errorf("sample %d: %s", i, strings.Join(failed, "; "))
	}
	return nil
}
