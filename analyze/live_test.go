package analyze_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
)

// TestParseSampleMatchesBundle: a sample parsed from memory (a watch's
// live view) has the counters and listeners the same sample has when read
// from a recorded bundle.
func TestParseSampleMatchesBundle(t *testing.T) {
	path := filepath.Join("..", "fixtures", "synflood-cookies-off-v4", "bundle.tar.zst")
	s, err := analyze.LoadBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	members := testutil.ReadBundle(t, path)
	prefix := bundle.SampleDir(1) + "/"
	files := map[string][]byte{}
	for name, data := range members {
		if rel, ok := strings.CutPrefix(name, prefix); ok {
			files[rel] = data
		}
	}
	got, gaps := analyze.ParseSample(files)
	if len(gaps) > 0 {
		t.Errorf("gaps %+v", gaps)
	}
	want := s.Samples[1]
	if len(want.Values) == 0 || len(want.Listeners) == 0 {
		t.Fatalf("fixture sample 1: %d counters, %d listeners", len(want.Values), len(want.Listeners))
	}
	if d := cmp.Diff(want.Values, got.Values, cmp.Comparer(func(a, b analyze.Counter) bool { return a.String() == b.String() })); d != "" {
		t.Errorf("counters (-bundle +memory):\n%s", d)
	}
	if d := cmp.Diff(want.Listeners, got.Listeners); d != "" {
		t.Errorf("listeners (-bundle +memory):\n%s", d)
	}
}

// TestSynQueueLimit: the live view's SYN-queue limit is the model's: the
// backlog plus one from 6.13, the 3/4 rule of tcp_max_syn_backlog with
// cookies off.
func TestSynQueueLimit(t *testing.T) {
	k, err := analyze.ParseKernelRelease("6.18.44-fc-v657")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sys  analyze.Sysctls
		want int
	}{
		{analyze.Sysctls{}, 129},
		{analyze.Sysctls{"net.ipv4.tcp_syncookies": "1", "net.ipv4.tcp_max_syn_backlog": "64"}, 129},
		{analyze.Sysctls{"net.ipv4.tcp_syncookies": "0", "net.ipv4.tcp_max_syn_backlog": "64"}, 49},
	} {
		if got := analyze.SynQueueLimit(k, tc.sys, 128); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.sys, got, tc.want)
		}
	}
}
