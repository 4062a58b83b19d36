package collectors

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readFile must refuse what is not a regular file, at once and naming the
// path: a FIFO in a /proc copy used to block open(2) until the deadline,
// taking every sampler of the sample loop down with it.
func TestReadFileRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "snmp")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Should readFile ever block on the FIFO again, this writer end, closed
	// after a while, ends the read with EOF and the test fails on the
	// missing error below instead of hanging. It is a release, not a bound
	// the test asserts.
	wfd, err := syscall.Open(fifo, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	release := time.AfterFunc(5*time.Second, func() { syscall.Close(wfd) })
	t.Cleanup(func() {
		if release.Stop() {
			syscall.Close(wfd)
		}
	})
	sub := filepath.Join(dir, "meminfo")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{fifo, "a named pipe, not a regular file"},
		{sub, "a directory, not a regular file"},
	} {
		data, err := readFile(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("readFile(%s) = %q, %v; want an error naming the path and saying %q", tc.path, data, err, tc.want)
		}
	}
	// A regular file still reads whole.
	reg := filepath.Join(dir, "netstat")
	if err := os.WriteFile(reg, []byte("TcpExt: A\nTcpExt: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := readFile(reg); err != nil || string(data) != "TcpExt: A\nTcpExt: 1\n" {
		t.Errorf("readFile(regular) = %q, %v", data, err)
	}
}

// TestReadFileWhole checks that readFile returns a file of any size up to
// maxProcFile whole, and refuses a larger one.
func TestReadFileWhole(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 511, 512, 513, 100 << 10, maxProcFile} {
		want := []byte(strings.Repeat("0123456789abcdef", size/16+1)[:size])
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, want, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readFile(path)
		if err != nil || string(got) != string(want) {
			t.Errorf("readFile of %d bytes: %d bytes, %v", size, len(got), err)
		}
	}
	path := filepath.Join(dir, "big")
	if err := os.WriteFile(path, make([]byte, maxProcFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := readFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("readFile of %d bytes = %d bytes, %v; want an error naming the path", maxProcFile+1, len(data), err)
	}
	if _, err := readFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("readFile of a missing file: %v, want fs.ErrNotExist", err)
	}
}
