package bundle

import (
	"fmt"
	"io"
	"io/fs"
)

// ReadFileLimit reads member name of fsys whole, refusing it with ErrLimit
// when it holds more than limit bytes and with ErrNotRegular when it is not
// a regular file. It never reads more than limit+1 bytes, so a member that a
// reader expects to be small (a manifest, system/uname) costs at most that,
// whatever the bundle says; and on an unpacked bundle (os.DirFS) a fifo or a
// device in place of a member is refused before it is opened.
func ReadFileLimit(fsys fs.FS, name string, limit int64) ([]byte, error) {
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: %s: %w", name, fi.Mode().Type(), ErrNotRegular)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("read %s: %d bytes, more than %d: %w", name, fi.Size(), limit, ErrLimit)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		// The file grew after the stat, or its size was not known.
		return nil, fmt.Errorf("read %s: more than %d bytes: %w", name, limit, ErrLimit)
	}
	return b, nil
}
