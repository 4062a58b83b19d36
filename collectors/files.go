package collectors

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/snapdiag/snapdiag/bundle"
	"golang.org/x/sys/unix"
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
//
// It uses the system calls directly: an os.File registers every descriptor
// with the runtime's poller, and /proc and /sys files can be polled, so each
// read would cost an epoll_ctl() to add it and one to remove it, a third of
// the system calls of the thousand sysctls a capture reads.
func readFile(path string) ([]byte, error) {
	data, _, err := readFileAt(unix.AT_FDCWD, path, path, nil)
	return data, err
}

// readFileAt is readFile of the file name in the directory open at dirfd
// (unix.AT_FDCWD: name is a path), read into buf when it fits, with the
// file's mode. path names the file in errors. Opening relative to an open
// directory spares the kernel the lookup of every directory above it, for
// each of the thousand sysctls of a capture.
func readFileAt(dirfd int, name, path string, buf []byte) ([]byte, uint32, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, st.Mode, fmt.Errorf("read %s: %s, not a regular file", path, bundle.FileKind(modeType(st.Mode)))
	}
	data, err := readAll(fd, path, buf[:0])
	return data, st.Mode, err
}

// readAll reads fd to its end into data, up to maxProcFile bytes.
func readAll(fd int, path string, data []byte) ([]byte, error) {
	if cap(data) == 0 {
		data = make([]byte, 0, 512)
	}
	for {
		if len(data) > maxProcFile {
			return nil, fmt.Errorf("read %s: larger than %d bytes", path, maxProcFile)
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := unix.Read(fd, data[len(data):min(cap(data), maxProcFile+1)])
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", path, err)
		case n == 0:
			return data, nil
		}
		data = data[:len(data)+n]
	}
}

// modeType is the file type of a stat mode, as fs.FileMode bits.
func modeType(mode uint32) fs.FileMode {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFLNK:
		return fs.ModeSymlink
	}
	return fs.ModeIrregular
}

// copyFile stores the kernel file at src as member name, exactly as read.
func copyFile(w *bundle.Writer, src, name string) error {
	data, err := readFile(src)
	if err != nil {
		return err
	}
	return w.WriteFile(name, data)
}
