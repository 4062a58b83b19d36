package analyze

import (
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/internal/nodebundle"
)

// watchedFS records every name opened in it.
type watchedFS struct {
	fs.FS
	mu     sync.Mutex
	opened []string
}

func (w *watchedFS) Open(name string) (fs.File, error) {
	w.mu.Lock()
	w.opened = append(w.opened, name)
	w.mu.Unlock()
	return w.FS.Open(name)
}

var (
	hostileOnce     sync.Once
	hostileManifest *bundle.Manifest
	hostileMembers  fstest.MapFS
)

// hostileBase is the members of hostileNode but its manifest, built once.
func hostileBase(t testing.TB) (*bundle.Manifest, fstest.MapFS) {
	hostileOnce.Do(func() { hostileManifest, hostileMembers = buildHostileBase(t) })
	if hostileManifest == nil {
		t.Fatal("the hostile bundle's base could not be built")
	}
	return hostileManifest, hostileMembers
}

func buildHostileBase(t testing.TB) (*bundle.Manifest, fstest.MapFS) {
	m, members := nodebundle.Build(t, fixHealthy, []nodebundle.Namespace{
		{NetNS: nodebundle.Pod(7, "shop", "web", "web"), From: fixHealthy},
	})
	fsys := fstest.MapFS{}
	for name, data := range members {
		rest, ok := strings.CutPrefix(name, "netns/7/")
		switch {
		case ok:
			fsys[name] = &fstest.MapFile{Data: data}
			fsys["secret/"+rest] = &fstest.MapFile{Data: data}
			fsys["netns/x/"+rest] = &fstest.MapFile{Data: data}
		case strings.HasPrefix(name, bundle.DirSamples+"/"):
			fsys[name] = &fstest.MapFile{Data: data}
		}
	}
	return m, fsys
}

// hostileNode is a whole-node bundle of one healthy namespace in memory,
// whose manifest lists entries instead, beside members no entry may reach:
// secret/ at the top level and a folder under netns/ no entry names
// rightly. Its top level has the host's samples only.
func hostileNode(t testing.TB, entries []bundle.NamespaceEntry) *watchedFS {
	t.Helper()
	base, members := hostileBase(t)
	m := *base
	m.Namespaces = &bundle.NamespacesInfo{Count: len(entries), Entries: entries}
	mb, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	fsys := maps.Clone(members)
	fsys[bundle.PathManifest] = &fstest.MapFile{Data: mb}
	return &watchedFS{FS: fsys}
}

// checkContained fails when Load opened a member outside every namespace's
// own folder: under secret/, or under a netns/ folder that is not the
// folder of an entry's inode.
func checkContained(t testing.TB, w *watchedFS, s *Snapshot, entries []bundle.NamespaceEntry) {
	t.Helper()
	ok := map[string]bool{}
	for _, e := range entries {
		if e.NetNS.Inode != 0 {
			ok[bundle.NetNSDir(e.NetNS.Inode)] = true
		}
	}
	for _, n := range s.Namespaces {
		if n.Entry.Dir != bundle.NetNSDir(n.Entry.NetNS.Inode) {
			t.Errorf("loaded namespace %d from %q", n.Entry.NetNS.Inode, n.Entry.Dir)
		}
	}
	for _, name := range w.opened {
		if strings.HasPrefix(name, "secret") {
			t.Errorf("read %s, outside every namespace", name)
		}
		if rest, found := strings.CutPrefix(name, bundle.DirNetNS+"/"); found {
			dir, _, _ := strings.Cut(rest, "/")
			if !ok[bundle.DirNetNS+"/"+dir] {
				t.Errorf("read %s, in no accepted namespace", name)
			}
		}
	}
}

// A namespace entry that names a folder other than its own, or names one
// already read, is refused with a gap naming it, and nothing outside the
// accepted folders is read; past maxNamespaces the rest are refused in one
// gap.
func TestHostileNamespaceEntries(t *testing.T) {
	ns := func(ino uint64, dir string) bundle.NamespaceEntry {
		return bundle.NamespaceEntry{NetNS: bundle.NetNS{Inode: ino, NamedBy: bundle.NamedByScan}, Dir: dir}
	}
	many := make([]bundle.NamespaceEntry, maxNamespaces+1000)
	for i := range many {
		many[i] = ns(uint64(i+1), bundle.NetNSDir(uint64(i+1)))
	}
	for _, tc := range []struct {
		name    string
		entries []bundle.NamespaceEntry
		loaded  int
		gaps    int
	}{
		{"own folder", []bundle.NamespaceEntry{ns(7, "netns/7")}, 1, 0},
		{"outside netns", []bundle.NamespaceEntry{ns(7, "secret")}, 0, 1},
		{"dot dot", []bundle.NamespaceEntry{ns(7, "netns/../secret")}, 0, 1},
		{"absolute", []bundle.NamespaceEntry{ns(7, "/etc")}, 0, 1},
		{"another's folder", []bundle.NamespaceEntry{ns(8, "netns/7")}, 0, 1},
		{"not the inode", []bundle.NamespaceEntry{ns(7, "netns/x")}, 0, 1},
		{"the netns folder", []bundle.NamespaceEntry{ns(7, "netns")}, 0, 1},
		{"no inode", []bundle.NamespaceEntry{ns(0, "netns/0")}, 0, 1},
		{"duplicate", []bundle.NamespaceEntry{ns(7, "netns/7"), ns(7, "netns/7")}, 1, 1},
		{"thousands", many, 1, 1}, // only netns/7 has a folder
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := hostileNode(t, tc.entries)
			s, err := Load(w)
			if err != nil {
				t.Fatal(err)
			}
			checkContained(t, w, s, tc.entries)
			if len(s.Namespaces) != tc.loaded {
				t.Errorf("loaded %d namespaces, want %d", len(s.Namespaces), tc.loaded)
			}
			refused := 0
			for _, g := range s.Gaps {
				if errors.Is(g.Cause, errBadNamespace) && g.Path == bundle.PathManifest {
					refused++
				}
			}
			if refused != tc.gaps {
				t.Errorf("%d refusals in the gaps, want %d: %v", refused, tc.gaps, s.Gaps)
			}
			r := Analyze(s, "hostile", Rules())
			if tc.gaps > 0 && !hasFinding(r, IDBundleIncomplete) {
				t.Errorf("no %s finding for a refused entry", IDBundleIncomplete)
			}
		})
	}
}

func hasFinding(r *Report, id string) bool {
	for _, f := range r.Findings {
		if f.ID == id {
			return true
		}
	}
	return false
}

// FuzzNamespaceEntries: whatever the manifest's namespace entries say (one
// per line, "inode dir"), Load and Analyze neither panic nor read outside
// the folders of the namespaces they accept.
func FuzzNamespaceEntries(f *testing.F) {
	for _, seed := range []string{
		"7 netns/7", "7 ../secret", "7 netns/../secret", "7 /etc", "7 netns/7\n7 netns/7", "8 netns/7",
		"7 netns/7/samples", "7 netns", "0 netns/0", "7 netns/7/..", "7 ./netns/7", "7 netns//7", "7 netns/x",
	} {
		f.Add(seed, uint16(0))
	}
	f.Add("7 netns/7", uint16(5000))
	f.Fuzz(func(t *testing.T, lines string, repeat uint16) {
		var entries []bundle.NamespaceEntry
		for l := range strings.SplitSeq(lines, "\n") {
			ino, dir, _ := strings.Cut(l, " ")
			n, _ := strconv.ParseUint(ino, 10, 64)
			entries = append(entries, bundle.NamespaceEntry{NetNS: bundle.NetNS{Inode: n, NamedBy: bundle.NamedByScan}, Dir: dir})
		}
		for i := 0; i < int(repeat) && len(entries) > 0; i++ {
			entries = append(entries, entries[i%len(entries)])
		}
		w := hostileNode(t, entries)
		s, err := Load(w)
		if err != nil {
			t.Fatal(err)
		}
		checkContained(t, w, s, entries)
		if len(s.Namespaces) > maxNamespaces {
			t.Fatalf("%d namespaces loaded, past the limit", len(s.Namespaces))
		}
		Analyze(s, "fuzz", Rules())
	})
}
