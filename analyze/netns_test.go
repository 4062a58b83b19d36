package analyze

import (
	"testing"

	"github.com/snapdiag/snapdiag/bundle"
)

// TestNamesNetNS: the header names the namespace of a targeted capture and
// of one taken inside a container, not the host's own nor one of a bundle
// from before the manifest recorded it.
func TestNamesNetNS(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    *bundle.NetNS
		want bool
	}{
		{"old bundle", nil, false},
		{"host, untargeted", &bundle.NetNS{Inode: 1, NamedBy: bundle.NamedBySelf, HostNS: true}, false},
		{"sidecar, untargeted", &bundle.NetNS{Inode: 2, NamedBy: bundle.NamedBySelf}, true},
		{"--container", &bundle.NetNS{Inode: 2, NamedBy: bundle.NamedByContainer, Owner: &bundle.Owner{ContainerID: "3f2a"}}, true},
		{"--netns of the host's", &bundle.NetNS{Inode: 1, NamedBy: bundle.NamedByNetNS, HostNS: true}, true},
	} {
		if got := (BundleInfo{NetNS: tc.n}).NamesNetNS(); got != tc.want {
			t.Errorf("%s: NamesNetNS = %v, want %v", tc.name, got, tc.want)
		}
	}
}
