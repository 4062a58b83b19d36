package analyze

import (
	"fmt"
	"os"

	"github.com/snapdiag/snapdiag/bundle"
)

// LoadPath parses the bundle at path: a .tar.zst bundle (read with
// bundle.Open within its default limits, accepting a damaged bundle whose
// manifest is intact), or a bundle unpacked into a directory.
func LoadPath(path string) (*Snapshot, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	if st.IsDir() {
		return LoadDir(path)
	}
	return LoadBundle(path)
}

// LoadBundle parses a .tar.zst bundle. A bundle cut short (a capture killed
// mid-write) is read up to the damage, which is recorded as a gap.
func LoadBundle(path string) (*Snapshot, error) {
	lim := bundle.DefaultLimits()
	lim.Partial = true
	b, err := bundle.Open(path, lim)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	defer b.Close()
	s, err := Load(b)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	for i := range s.Gaps {
		if s.Damage != nil && s.Gaps[i].Cause == s.Damage {
			s.Gaps[i].Path = path // the damage is the file's, named as given
		}
	}
	return s, nil
}

// LoadDir parses a bundle unpacked into dir (tar --zstd -xf).
func LoadDir(dir string) (*Snapshot, error) {
	s, err := Load(bundle.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return s, nil
}
