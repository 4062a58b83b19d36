// Package bundle is the snapdiag bundle format: the manifest types, the paths of
// every member, a Writer that stages members and commits them atomically into a
// .tar.zst, and Open, which reads a bundle back as an fs.FS within fixed limits.
//
// Collectors and the analyzer meet only here: a collector writes a member at a
// path named by a constant of this package, and a rule reads it back by the
// same constant.
package bundle

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// Format is the bundle format this package writes and reads.
const Format = "snapdiag-bundle/1"

// Member paths. Raw kernel files keep their kernel path without the leading
// slash (proc/net/netstat), so a person with tar and less finds them where they
// expect them.
const (
	PathManifest       = "manifest.json"
	PathSocketsTCP     = "sockets/tcp.jsonl"
	PathSocketsSummary = "sockets/summary.json"
	PathPackets        = "packets/sample.pcap"

	PathUname    = "system/uname"
	PathUptime   = "system/uptime"
	PathLoadavg  = "system/loadavg"
	PathMeminfo  = "system/meminfo"
	PathBootID   = "system/boot_id"
	PathKmsg     = "system/kmsg"
	PathKmsgNet  = "system/kmsg_net"
	PathProcStat = "system/proc_stat"

	DirSysctl  = "proc/sys"
	DirProcNet = "proc/net"
	DirSamples = "samples"

	// Inside each sample folder (SampleFile).
	SampleTimeFile  = "time"
	SampleNetstat   = "proc/net/netstat"
	SampleSNMP      = "proc/net/snmp"
	SampleSNMP6     = "proc/net/snmp6"
	SampleSockstat  = "proc/net/sockstat"
	SampleSockstat6 = "proc/net/sockstat6"
	SampleSoftnet   = "proc/net/softnet_stat"
	SampleDev       = "proc/net/dev"
	SampleConntrack = "proc/net/stat/nf_conntrack"
	SampleCTCount   = "proc/sys/net/netfilter/nf_conntrack_count"
	SampleListeners = "listeners.json"
)

// SampleDir is the folder of counter sample i: samples/000, samples/001, ...
func SampleDir(i int) string { return fmt.Sprintf("%s/%03d", DirSamples, i) }

// SampleFile is the path of name (one of the Sample* constants) inside sample i.
func SampleFile(i int, name string) string { return SampleDir(i) + "/" + name }

// SysctlPath is the member path of a sysctl given by its dotted name
// (net.core.somaxconn -> proc/sys/net/core/somaxconn). Dots inside interface
// names cannot be told apart in the dotted form; callers with such names use
// the slash form.
func SysctlPath(name string) string {
	return DirSysctl + "/" + strings.ReplaceAll(name, ".", "/")
}

// ValidName reports whether name is acceptable as a member name: relative,
// clean, slash-separated, no "..", no empty or dot elements.
func ValidName(name string) bool {
	// Invalid UTF-8 is refused here as fs.ValidPath refuses it when reading:
	// an interface named with such bytes must cost one sysctl file, not make
	// every bundle unreadable.
	if name == "" || len(name) > 1024 || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) ||
		strings.Contains(name, "\\") || !utf8.ValidString(name) {
		return false
	}
	if path.Clean(name) != name {
		return false
	}
	for elem := range strings.SplitSeq(name, "/") { // no slice for each of a thousand names
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

// rank orders members in the archive: what matters most first, the large
// members last, so a damaged bundle keeps the manifest and the counters and a
// reader can stop early.
func rank(name string) int {
	// A namespace's members rank as the top level's members of the same
	// kind: netns/<inode>/sockets/tcp.jsonl is large too.
	if rest, ok := strings.CutPrefix(name, DirNetNS+"/"); ok {
		if _, inner, ok := strings.Cut(rest, "/"); ok && inner != PathManifest {
			return rank(inner)
		}
	}
	switch {
	case name == PathManifest:
		return 0
	case strings.HasPrefix(name, DirSamples+"/"):
		return 1
	case strings.HasPrefix(name, "system/"):
		return 2
	case strings.HasPrefix(name, DirSysctl+"/"):
		return 3
	case strings.HasPrefix(name, "proc/"):
		return 4
	case name == PathSocketsSummary:
		return 5
	case name == PathSocketsTCP:
		return 7
	case strings.HasPrefix(name, "packets/"):
		return 8
	default:
		return 6
	}
}
