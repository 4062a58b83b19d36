package tui

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/internal/nodebundle"
)

const (
	fixHealthy = "../fixtures/healthy-busy/bundle.tar.zst"
	fixSYN     = "../fixtures/synflood-cookies-off-v4/bundle.tar.zst"
	fixAccept  = "../fixtures/accept-queue-never-accepts/bundle.tar.zst"
)

// nodeNamespaces are the namespaces of the test node: six pods, one with a
// SYN flood (web-2) and one with a stuck acceptor (web-4).
func nodeNamespaces() []nodebundle.Namespace {
	out := make([]nodebundle.Namespace, 6)
	for i := range out {
		out[i] = nodebundle.Namespace{NetNS: nodebundle.Pod(uint64(4026532100+i), "shop", fmt.Sprintf("web-%d", i), "web"), From: fixHealthy}
	}
	out[2].From, out[2].Detail = fixSYN, true
	out[4].From, out[4].Detail = fixAccept, true
	return out
}

var (
	nodeOnce sync.Once
	nodePath string
)

// nodeBundle is the test node's whole-node bundle, written once per test
// binary into a folder removed when the tests end (TestMain).
func nodeBundle(t testing.TB) string {
	t.Helper()
	nodeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "snapdiag-tui-node-")
		if err != nil {
			t.Fatal(err)
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		nodePath = nodebundle.Write(t, dir, fixHealthy, nodeNamespaces())
	})
	if nodePath == "" {
		t.Fatal("the node bundle could not be written")
	}
	return nodePath
}

// cleanups run after every test of the package.
var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}

// The namespaces view lists the host and every namespace, the worst first,
// and shows only for a whole-node bundle.
func TestNamespacesViewWorstFirst(t *testing.T) {
	m := started(newTestModel(t, nodeBundle(t), nil), 120, 40)
	press(m, "9")
	if m.Active() != ViewNamespaces {
		t.Fatalf("9 shows %s, want the namespaces view", m.Active())
	}
	v := m.views[ViewNamespaces].(*namespacesView)
	var got []string
	for row := range v.order {
		ns := v.namespace(row)
		got = append(got, fmt.Sprintf("%s %d %s", ns.Worst, ns.Findings, namespaceName(ns)))
	}
	want := []string{
		"critical 3 pod shop/web-2 (container web)", "critical 1 pod shop/web-4 (container web)",
		" 0 host netns", " 0 pod shop/web-0 (container web)", " 0 pod shop/web-1 (container web)",
		" 0 pod shop/web-3 (container web)", " 0 pod shop/web-5 (container web)",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("namespaces (-want +got):\n%s", d)
	}

	single := started(newTestModel(t, fixSYN, nil), 120, 40)
	press(single, "9")
	if single.Active() != ViewFindings {
		t.Errorf("9 in a bundle of one namespace shows %s", single.Active())
	}
	press(single, "8", "tab")
	if single.Active() != ViewFindings {
		t.Errorf("tab after the manifest shows %s, want the findings (no namespaces tab)", single.Active())
	}
}

// Enter on a namespace, pressed in the running program, focuses the views
// on it: the header names it, the findings are its own, the listeners its
// own; esc in the namespaces view puts the whole node back.
func TestFocusNamespace(t *testing.T) {
	m := runKeys(t, newTestModel(t, nodeBundle(t), nil), keys("9", "enter"), "netns: pod shop/web-2")
	f := m.ctx.Focus
	if f == nil || f.NetNS.Owner.Pod.Name != "web-2" {
		t.Fatalf("focus %+v, want pod web-2", f)
	}
	if m.Active() != ViewFindings {
		t.Errorf("after enter the %s view shows, want the findings", m.Active())
	}
	fv := m.views[ViewFindings].(*findingsView)
	if len(fv.order) != f.Findings {
		t.Errorf("the findings view lists %d findings, want the namespace's %d", len(fv.order), f.Findings)
	}
	for row := range fv.order {
		if ns := fv.finding(row).NetNS; ns == nil || ns.Inode != f.NetNS.Inode {
			t.Errorf("finding %s of %v listed in the focus on %d", fv.finding(row).ID, ns, f.NetNS.Inode)
		}
	}
	lv := m.views[ViewListeners].(*listenersView)
	want := listenerNames(m.snap.Namespace(f.NetNS.Inode).Snap.Listeners())
	if d := cmp.Diff(want, listenerNames(lv.all)); d != "" || len(want) == 0 {
		t.Errorf("listeners in focus (-want +got):\n%s", d)
	}

	press(m, "9", "esc")
	if m.ctx.Focus != nil {
		t.Errorf("esc left the focus on %s", namespaceName(m.ctx.Focus))
	}
	if got := len(m.views[ViewFindings].(*findingsView).order); got != len(m.ctx.Report.Findings) {
		t.Errorf("the whole node lists %d findings, want %d", got, len(m.ctx.Report.Findings))
	}
}

// Evidence of a namespace's finding, opened with the whole node in focus,
// leads to the listeners view with that namespace in focus.
func TestJumpFocusesTheNamespace(t *testing.T) {
	m := started(newTestModel(t, nodeBundle(t), nil), 120, 40)
	fv := m.views[ViewFindings].(*findingsView)
	row, ev := -1, -1
	for r := range fv.order {
		f := fv.finding(r)
		for i, e := range f.Evidence {
			if tg, ok := evidenceTarget(e); ok && tg.View == ViewListeners && f.NetNS != nil && row < 0 {
				row, ev = r, i
			}
		}
	}
	if row < 0 {
		t.Fatal("no namespace finding with listener evidence")
	}
	inode := fv.finding(row).NetNS.Inode
	press(m, append(append(append(down(row), "enter"), down(ev)...), "enter")...)
	if m.Active() != ViewListeners || m.ctx.Focus == nil || m.ctx.Focus.NetNS.Inode != inode {
		t.Fatalf("view %s, focus %v: want the listeners of namespace %d", m.Active(), m.ctx.Focus, inode)
	}
}

func listenerNames(ls []*analyze.ListenerState) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Local)
	}
	return out
}

// TestGoldenNode renders the namespaces view and a namespace in focus of
// the test node at the golden sizes (-update rewrites them).
func TestGoldenNode(t *testing.T) {
	for _, sz := range goldenSizes {
		for _, sc := range []struct {
			name string
			keys []string
		}{{"findings", []string{"1"}}, {"namespaces", []string{"9"}}, {"focused", []string{"9", "enter"}}, {"focused-listeners", []string{"9", "enter", "2"}}, {"focused-finding", []string{"9", "enter", "enter"}}, {"help", []string{"9", "?"}}} {
			name := fmt.Sprintf("node/%s-%dx%d", sc.name, sz[0], sz[1])
			t.Run(name, func(t *testing.T) {
				m := started(newTestModel(t, nodeBundle(t), nil), sz[0], sz[1])
				press(m, sc.keys...)
				got := screen(m)
				checkFits(t, got, sz[0], sz[1])
				checkGolden(t, name, got, "")
			})
		}
	}
}
