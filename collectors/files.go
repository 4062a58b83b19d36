package collectors

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/snapdiag/snapdiag/bundle"
)

// maxProcFile bounds what one /proc or /sys file may contribute. The files
// read here are a few KiB; the bound keeps a hostile or broken file (a /proc
// copy in a test, a kernel bug) from eating the capture's memory.
const maxProcFile = 16 << 20

// readFile reads a kernel file whole, up to maxProcFile bytes. /proc files
// report size 0, so the size is not trusted.
//
// Every file read here is a regular file in a real /proc or /sys. Anything
// else is refused with an error naming the path: a FIFO would block open(2)
// (and then read(2)) until a writer came, holding its collector past the
// deadline and, for a sampler, every sampler after it; O_NONBLOCK makes the
// open return at once, and the type check keeps the read from waiting.
func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: %s, not a regular file", path, bundle.FileKind(fi.Mode()))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxProcFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxProcFile {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, maxProcFile)
	}
	return data, nil
}

// copyFile stores the kernel file at src as member name, exactly as read.
func copyFile(w *bundle.Writer, src, name string) error {
	data, err := readFile(src)
	if err != nil {
		return err
	}
	return w.WriteFile(name, data)
}
