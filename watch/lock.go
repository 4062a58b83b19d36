package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// LockName is the lock file in an output directory. Every snapdiag process
// that writes bundles there takes it for the length of a capture and its
// retention, so two watchdogs that fire together write one bundle, not two
// half-starved ones.
const LockName = ".snapdiag.lock"

// ErrLocked is returned by AcquireLock when another process kept the lock
// for the whole wait.
var ErrLocked = errors.New("another snapdiag holds the capture lock")

// lockPoll is how often AcquireLock retries a held lock.
const lockPoll = 50 * time.Millisecond

// Lock is a held capture lock: an exclusive flock(2) on DIR/.snapdiag.lock.
// The kernel drops it when the process dies, so a killed capture never leaves
// a stale lock behind.
type Lock struct {
	f *os.File
}

// AcquireLock takes the capture lock of dir, waiting at most wait (0: try
// once). It returns an error wrapping ErrLocked, with the holder's pid when
// the lock file names it, if the lock stayed held, and ctx's error if ctx
// ended the wait.
func AcquireLock(ctx context.Context, dir string, wait time.Duration) (*Lock, error) {
	return acquireLock(ctx, dir, wait, realClock{})
}

// acquireLock is AcquireLock with the wait timed by clock.
func acquireLock(ctx context.Context, dir string, wait time.Duration, clock Clock) (*Lock, error) {
	path := filepath.Join(dir, LockName)
	// O_NOFOLLOW: a symlink planted at the lock's name is not followed to
	// create or truncate some other file.
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	deadline := clock.Now().Add(wait)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		left := deadline.Sub(clock.Now())
		if left <= 0 {
			holder := readHolder(f)
			f.Close()
			if holder != "" {
				return nil, fmt.Errorf("%s (pid %s) after %v: %w", path, holder, wait, ErrLocked)
			}
			return nil, fmt.Errorf("%s after %v: %w", path, wait, ErrLocked)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-clock.After(min(left, lockPoll)):
		}
	}
	// The pid is only for the message a waiting process prints.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

func readHolder(f *os.File) string {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid := string(bytes.TrimSpace(buf[:n]))
	if _, err := strconv.Atoi(pid); err != nil {
		return ""
	}
	return pid
}

// Release drops the lock. The file stays, so the next process locks the same
// inode.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Closing the only descriptor releases the flock.
	if err := f.Close(); err != nil {
		return fmt.Errorf("release lock %s: %w", f.Name(), err)
	}
	return nil
}
