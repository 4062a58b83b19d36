package fleet

import (
	"io/fs"
	"strconv"
	"syscall"
)

// fileVersion is what changes when a file is replaced: its modification
// time, which rsync -a, cp -p and tar x set back to the old one's, and its
// device, inode and change time, which they cannot: a rename brings
// another inode, and a write in place moves the change time, which no
// user can set.
func fileVersion(info fs.FileInfo) string {
	v := "mtime:" + strconv.FormatInt(info.ModTime().UnixNano(), 10)
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		v += " dev:" + strconv.FormatUint(uint64(st.Dev), 10) + " ino:" + strconv.FormatUint(uint64(st.Ino), 10) +
			" ctime:" + strconv.FormatInt(int64(st.Ctim.Sec), 10) + "." + strconv.FormatInt(int64(st.Ctim.Nsec), 10)
	}
	return v
}
