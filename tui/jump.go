package tui

import (
	"path"
	"strings"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
)

// evidenceTarget is the view and row a piece of evidence came from: a
// listener's queues the listeners view at that listener, a counter the
// counters view filtered to it, a sysctl the sysctls view at its row, the
// packet sample the packets view, the socket table the sockets view, the
// manifest its view, and any other member of the bundle the files view.
//
// Evidence of a namespace of a whole-node bundle (netns/<inode>/...) leads
// to the same views, with that namespace in focus.
func evidenceTarget(e analyze.Evidence) (Target, bool) {
	dir, src := "", e.Source
	if rest, ok := strings.CutPrefix(src, bundle.DirNetNS+"/"); ok {
		if ino, member, ok := strings.Cut(rest, "/"); ok {
			dir, src = bundle.DirNetNS+"/"+ino, member
		}
	}
	t, ok := memberTarget(src, e.Metric)
	if ok && dir != "" {
		t.Dir = dir
		if t.View == ViewFiles {
			// The files view lists the whole bundle's members.
			t.Key, t.Filter = e.Source, ""
		}
	}
	return t, ok
}

// memberTarget is the view and row of evidence from member src, as a
// bundle of one namespace names its members.
func memberTarget(src, metric string) (Target, bool) {
	if rest, ok := strings.CutPrefix(metric, "listener "); ok {
		local, _, _ := strings.Cut(rest, " ")
		return Target{View: ViewListeners, Key: local}, true
	}
	switch {
	case strings.HasPrefix(src, bundle.DirSysctl+"/"):
		return Target{View: ViewSysctls, Key: sysctlName(src)}, true
	case src == bundle.PathPackets:
		return Target{View: ViewPackets}, true
	case src == bundle.PathSocketsTCP || src == bundle.PathSocketsSummary:
		t := Target{View: ViewSockets}
		if p := portInMetric(metric); p != "" {
			t.Filter = "port:" + p
			if strings.Contains(metric, "SYN-RECV") {
				t.Filter = "state:syn-recv lport:" + p
			}
		}
		return t, true
	case src == bundle.PathManifest:
		return Target{View: ViewManifest}, true
	case strings.HasPrefix(src, bundle.DirSamples+"/") && path.Base(src) != bundle.SampleListeners:
		// A counter: "TcpExt.ListenDrops", "Softnet.dropped by CPU",
		// "TcpExt.TCPReqQFullDoCookies - SyncookiesSent".
		name, _, _ := strings.Cut(metric, " ")
		if strings.Contains(name, ".") && !strings.HasPrefix(name, "net.") && !strings.HasPrefix(name, "fs.") {
			return Target{View: ViewCounters, Key: name, Filter: name}, true
		}
		return Target{View: ViewFiles, Key: src}, true
	case src == bundle.DirSamples:
		return Target{View: ViewFiles, Filter: bundle.DirSamples + "/"}, true
	case bundle.ValidName(src) && strings.Contains(src, "/"):
		return Target{View: ViewFiles, Key: src}, true
	}
	return Target{}, false
}

// sysctlName turns a member path under proc/sys into a dotted name.
func sysctlName(member string) string {
	return strings.ReplaceAll(strings.TrimPrefix(member, bundle.DirSysctl+"/"), "/", ".")
}

// portInMetric finds N in "... port N ..." of an evidence metric.
func portInMetric(metric string) string {
	f := strings.Fields(metric)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "port" && strings.Trim(f[i+1], "0123456789") == "" {
			return f[i+1]
		}
	}
	return ""
}
