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

// OpenFile and DirFS refuse a named pipe without blocking on it (a pipe
// with no writer blocks open(2) forever), and read regular files as usual.
func TestOpenFileRefusesPipes(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "system"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "system", "uname"), []byte("Linux\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenFile(filepath.Join(dir, "fifo")); !errors.Is(err, ErrNotRegular) {
		t.Errorf("OpenFile(fifo) = %v, want ErrNotRegular", err)
	}
	if _, _, err := OpenFile(dir); !errors.Is(err, ErrNotRegular) {
		t.Errorf("OpenFile(dir) = %v, want ErrNotRegular", err)
	}
	if _, _, err := OpenFile("/dev/zero"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("OpenFile(/dev/zero) = %v, want ErrNotRegular", err)
	}
	if _, err := Open(filepath.Join(dir, "fifo"), Limits{}); !errors.Is(err, ErrNotRegular) || !errors.Is(err, ErrNotBundle) {
		t.Errorf("Open(fifo) = %v, want ErrNotRegular and ErrNotBundle", err)
	}
	fsys := DirFS(dir)
	if _, err := fsys.Open("fifo"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("DirFS.Open(fifo) = %v, want ErrNotRegular", err)
	}
	if _, err := fs.ReadFile(fsys, "fifo"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("fs.ReadFile(DirFS, fifo) = %v, want ErrNotRegular", err)
	}
	if fi, err := fs.Stat(fsys, "fifo"); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("fs.Stat(DirFS, fifo) = %v, %v: want its mode, without opening it", fi, err)
	}
	if _, err := fsys.Open("../x"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("DirFS.Open(../x) = %v, want fs.ErrInvalid", err)
	}
	if _, err := fsys.Open("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("DirFS.Open(missing) = %v, want fs.ErrNotExist", err)
	}
	os.Remove(filepath.Join(dir, "fifo"))
	if err := fstest.TestFS(fsys, "system/uname"); err != nil {
		t.Error(err)
	}
}
