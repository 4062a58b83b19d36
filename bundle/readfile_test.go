package bundle

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/fstest"
)

func TestReadFileLimit(t *testing.T) {
	fsys := fstest.MapFS{
		"small": {Data: []byte("0123456789")},
		"dir":   {Mode: fs.ModeDir},
	}
	tests := []struct {
		name    string
		limit   int64
		want    string
		wantErr error
	}{
		{"small", 10, "0123456789", nil},
		{"small", 9, "", ErrLimit},
		{"dir", 10, "", ErrNotRegular},
		{"missing", 10, "", fs.ErrNotExist},
	}
	for _, tt := range tests {
		got, err := ReadFileLimit(fsys, tt.name, tt.limit)
		if !errors.Is(err, tt.wantErr) || string(got) != tt.want {
			t.Errorf("ReadFileLimit(%s, %d) = %q, %v; want %q, %v", tt.name, tt.limit, got, err, tt.want, tt.wantErr)
		}
	}
}

// An unpacked bundle with a fifo in place of a member: opening the fifo
// would block until a writer comes, so it must be refused before.
func TestReadFileLimitFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "manifest.json"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, err := ReadFileLimit(os.DirFS(dir), "manifest.json", 1<<20); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadFileLimit on a fifo = %v, want ErrNotRegular", err)
	}
}
