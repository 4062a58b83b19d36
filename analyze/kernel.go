package analyze

import (
	"fmt"
	"strconv"
	"strings"
)

// KernelVersion is a kernel release reduced to major.minor.patch, so rules can
// compare it with the versions that changed the listen path (docs/kernel-listen-path.md §1.6).
type KernelVersion struct {
	Major, Minor, Patch int
	// Release is the release string as the bundle gave it.
	Release string
}

// Known reports whether a version was parsed.
func (k KernelVersion) Known() bool { return k.Major > 0 }

// AtLeast reports whether k is major.minor.patch or later. An unknown version
// is treated as current, because current semantics are the safer default for
// a bundle that does not say.
func (k KernelVersion) AtLeast(major, minor, patch int) bool {
	if !k.Known() {
		return true
	}
	if k.Major != major {
		return k.Major > major
	}
	if k.Minor != minor {
		return k.Minor > minor
	}
	return k.Patch >= patch
}

// String is "6.18.44", or "unknown".
func (k KernelVersion) String() string {
	if !k.Known() {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d.%d", k.Major, k.Minor, k.Patch)
}

// parseKernelRelease reads a release such as "6.18.44-fc-v657",
// "4.19.0-26-amd64" or "3.10.0-1160.el7.x86_64": up to three dot-separated
// numbers at the start, each ending at the first non-digit.
func parseKernelRelease(s string) (KernelVersion, error) {
	rel := strings.TrimSpace(s)
	k := KernelVersion{Release: rel}
	rest := rel
	var nums [3]int
	n := 0
	for n < 3 {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i > 6 {
			break
		}
		v, err := strconv.Atoi(rest[:i])
		if err != nil {
			break
		}
		nums[n] = v
		n++
		rest = rest[i:]
		if len(rest) == 0 || rest[0] != '.' {
			break
		}
		rest = rest[1:]
	}
	if n < 2 || nums[0] == 0 {
		return KernelVersion{Release: rel}, fmt.Errorf("kernel release %q: want major.minor", rel)
	}
	k.Major, k.Minor, k.Patch = nums[0], nums[1], nums[2]
	return k, nil
}
