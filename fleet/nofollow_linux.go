package fleet

import "syscall"

// noFollow refuses a symbolic link as the last element of a bundle's path.
const noFollow = syscall.O_NOFOLLOW
