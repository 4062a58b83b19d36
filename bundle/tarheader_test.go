package bundle

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestTarHeaderMatchesArchiveTar checks that the headers built by hand are
// archive/tar's, byte for byte, on both sides of every bound that sends a
// header to archive/tar instead: the name's length and bytes, the size's
// and the time's octal fields.
func TestTarHeaderMatchesArchiveTar(t *testing.T) {
	names := []string{
		"manifest.json",
		"sysctl/net/ipv4/tcp_max_syn_backlog",
		strings.Repeat("a", 99),
		strings.Repeat("b", 100),
		strings.Repeat("c/", 50) + "d", // 101 bytes: a PAX path record
		"netns/4026532281/sysctl/net/ipv6/conf/" + strings.Repeat("veth", 20) + "/disable_ipv6",
		"sysctl/net/ipv4/conf/eth\u00e9/forwarding", // not ASCII: a PAX path record
	}
	sizes := []int64{0, 1, 511, 512, 513, 1<<33 - 1, 1 << 33, 5 << 30 * 3}
	times := []time.Time{
		testTime,
		testTime.Add(1234 * time.Millisecond), // truncated to the second
		time.Unix(1<<33-1, 0),
		time.Unix(1<<33, 0),     // past the octal field: a PAX mtime record
		time.Unix(-1, 0),        // before 1970: a PAX mtime record
		{},                      // zero: archive/tar writes 1970
		time.Unix(0, 0).Local(), // the zone does not matter
	}
	for _, name := range names {
		for _, size := range sizes {
			for _, mtime := range times {
				var want bytes.Buffer
				tw := tar.NewWriter(&want)
				if err := tw.WriteHeader(&tar.Header{
					Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600,
					ModTime: mtime.UTC().Truncate(time.Second), Format: tar.FormatPAX,
				}); err != nil {
					t.Fatal(err)
				}
				got, err := appendTarHeader([]byte("kept"), name, size, mtime)
				if err != nil {
					t.Fatalf("appendTarHeader(%q, %d, %v): %v", name, size, mtime, err)
				}
				if diff := cmp.Diff(append([]byte("kept"), want.Bytes()...), got); diff != "" {
					t.Errorf("appendTarHeader(%q, %d, %v) differs from archive/tar (-want +got):\n%s", name, size, mtime, diff)
				}
			}
		}
	}
}
