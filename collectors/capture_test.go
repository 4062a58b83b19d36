package collectors

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/snapdiag/snapdiag/bundle"
)

// A Host with no proc root keeps the caller's ports and bounds: only its zero
// fields take the defaults, and the manifest records what the capture used.
func TestCaptureKeepsCallerHost(t *testing.T) {
	res, err := Capture(context.Background(), Options{
		Dir: t.TempDir(), Samples: 1, Interval: time.Millisecond, Deadline: 5 * time.Second,
		Host: Host{Ports: []int{143}, SocketCap: 5},
		// No collectors: the test is about the options, not the evidence.
		Collectors: []Collector{}, Samplers: []Sampler{},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Manifest.Options
	want := bundle.Options{
		Ports: []int{143}, Samples: 1, IntervalMS: got.IntervalMS, DeadlineMS: got.DeadlineMS,
		SocketCap: 5, PacketLimit: DefaultPacketLimit,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest options (-want +got):\n%s", diff)
	}
}

func TestHostWithDefaults(t *testing.T) {
	d := DefaultHost()
	for _, tc := range []struct {
		name     string
		in, want Host
	}{
		{"zero", Host{}, Host{Proc: d.Proc, Sys: d.Sys, Dev: d.Dev, SocketCap: d.SocketCap, PacketLimit: d.PacketLimit, PacketBytes: d.PacketBytes}},
		{"default", d, d},
		{"caller's fields stay",
			Host{Proc: "/tmp/proc", Ports: []int{143, 993}, SocketCap: 5, PacketWindow: time.Second, PacketLimit: 7, PacketBytes: 9, Payload: true},
			Host{Proc: "/tmp/proc", Sys: d.Sys, Dev: d.Dev, Ports: []int{143, 993}, SocketCap: 5, PacketWindow: time.Second, PacketLimit: 7, PacketBytes: 9, Payload: true}},
	} {
		if diff := cmp.Diff(tc.want, tc.in.WithDefaults()); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", tc.name, diff)
		}
	}
}
