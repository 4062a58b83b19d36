package watch

import (
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
)

// TestMetricsPerNetNS: with watch --all-netns, each listener's series name
// its namespace's pod and container, only the fullest --metrics-listeners
// are kept, and the listener counts cover every namespace.
func TestMetricsPerNetNS(t *testing.T) {
	drops := uint32(7)
	pod := bundle.NetNS{Inode: 1, NamedBy: bundle.NamedByScan, PID: 40, Owner: &bundle.Owner{
		ContainerID: "3f2a9c1b7d4e3f2a9c1b7d4e3f2a9c1b7d4e3f2a9c1b7d4e3f2a9c1b7d4e1234", Name: "shop",
		Pod: &bundle.Pod{Name: "shop-7d9f8c6b5-x2x4q", Namespace: "prod"}}}
	bare := bundle.NetNS{Inode: 2, NamedBy: bundle.NamedByScan, Name: "blue"}
	sts := []collectors.NetNSStatus{
		{NetNS: bare, Listening: []bundle.Listener{
			{Local: "127.0.0.1:8080", Port: 8080, RecvQ: 1, SendQ: 16},
			{Local: "127.0.0.1:9090", Port: 9090, RecvQ: 0, SendQ: 16},
		}},
		{NetNS: pod, Listening: []bundle.Listener{{Local: "0.0.0.0:8081", Port: 8081, RecvQ: 9, SendQ: 8, Drops: &drops}}},
	}
	m := NewMetrics(MetricsConfig{MaxListeners: 2, PerNetNS: true})
	m.observeNode(sts)
	page := gather(t, m)
	if got := one(t, page, "snapdiag_listeners", nil); got != 3 {
		t.Errorf("listeners %v, want 3", got)
	}
	if got := one(t, page, "snapdiag_listeners_omitted", nil); got != 1 {
		t.Errorf("omitted %v, want 1", got)
	}
	if n := len(page["snapdiag_listener_accept_queue"]); n != 2 {
		t.Errorf("%d listeners on the page, want 2", n)
	}
	sick := map[string]string{"pod": "shop-7d9f8c6b5-x2x4q", "namespace": "prod", "container": "shop", "port": "8081", "netns": pod.String()}
	if got := one(t, page, "snapdiag_listener_accept_queue", sick); got != 9 {
		t.Errorf("accept queue of the pod's listener %v, want 9", got)
	}
	if got := one(t, page, "snapdiag_listener_drops_total", sick); got != 7 {
		t.Errorf("drops of the pod's listener %v, want 7", got)
	}
	if got := one(t, page, "snapdiag_listener_accept_queue", map[string]string{"netns": "netns blue", "port": "8080", "pod": ""}); got != 1 {
		t.Errorf("accept queue of blue's listener %v, want 1", got)
	}
	if n := len(page["snapdiag_listener_syn_recv"]); n != 0 {
		t.Errorf("%d SYN-RECV series: LISTEN-only dumps do not count them", n)
	}
}
