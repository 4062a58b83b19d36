package bundle

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// OpenFile opens a file a user named (a bundle, a key file) for reading,
// refusing anything but a regular file with an error wrapping ErrNotRegular.
//
// A named pipe would block open(2) until a writer came, forever when none
// does (the kernel's fifo_open waits in wait_for_partner); a terminal or a
// device would be read without end. The type is checked before the open,
// the open itself uses O_NONBLOCK so that a pipe swapped in after that check
// cannot block it, and the opened file is checked again (fstat) to close the
// race. O_NONBLOCK changes nothing for a regular file.
func OpenFile(path string) (*os.File, fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, notRegular(path, fi.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(path, fi.Mode())
	}
	return f, fi, nil
}

// notRegular is the error for a file that is not a regular one, naming its
// type.
func notRegular(path string, m fs.FileMode) error {
	return fmt.Errorf("read %s: %s, %w", path, FileKind(m), ErrNotRegular)
}

// fileKind names a file's type for an error message.
func FileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	default:
		return "a special file"
	}
}

// DirFS is os.DirFS for a bundle unpacked into dir, except that it never
// opens a named pipe, a device or a socket in place of a member: Open
// refuses them with ErrNotRegular, checking both before and after an
// O_NONBLOCK open as OpenFile does, so no read of an unpacked bundle can
// block on a pipe or read a device without end. Directories open as usual.
func DirFS(dir string) fs.FS { return dirFS(dir) }

type dirFS string

func (d dirFS) join(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return filepath.Join(string(d), filepath.FromSlash(name)), nil
}

// Open opens a regular file or a directory of the tree.
func (d dirFS) Open(name string) (fs.File, error) {
	p, err := d.join("open", name)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: unwrapPath(err)}
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%s, %w", FileKind(fi.Mode()), ErrNotRegular)}
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: unwrapPath(err)}
	}
	fi, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "stat", Path: name, Err: unwrapPath(err)}
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%s, %w", FileKind(fi.Mode()), ErrNotRegular)}
	}
	return f, nil
}

// Stat describes a file of the tree without opening it (fs.StatFS).
func (d dirFS) Stat(name string) (fs.FileInfo, error) { return dirCall(d, "stat", name, os.Stat) }

// ReadDir lists a directory of the tree, sorted by name (fs.ReadDirFS).
func (d dirFS) ReadDir(name string) ([]fs.DirEntry, error) {
	return dirCall(d, "readdir", name, os.ReadDir)
}

// dirCall runs fn on the path of name in d, with the error naming name.
func dirCall[T any](d dirFS, op, name string, fn func(string) (T, error)) (T, error) {
	var zero T
	p, err := d.join(op, name)
	if err != nil {
		return zero, err
	}
	v, err := fn(p)
	if err != nil {
		return zero, &fs.PathError{Op: op, Path: name, Err: unwrapPath(err)}
	}
	return v, nil
}

// unwrapPath drops the *fs.PathError of an os call, whose path is the
// joined one: the error then names the member as the fs.FS caller knows it.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}
