package analyze

import (
	"fmt"
	"os"
)

// LoadDir parses a bundle unpacked into dir (tar --zstd -xf).
func LoadDir(dir string) (*Snapshot, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open bundle %s: not a directory", dir)
	}
	s, err := Load(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return s, nil
}
