package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/watch"
	"golang.org/x/sys/unix"
)

// TestLockHintMatchesError: the hint after a failed capture lock names the
// trouble the lock really met (a read-only filesystem, a symlink at the
// lock's name, a lock another process holds), never "another capture is
// writing" for all of them.
func TestLockHintMatchesError(t *testing.T) {
	ro := testutil.Tmpfs(t, 1<<20)
	if err := unix.Mount("", ro, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", ro, err)
	}
	t.Cleanup(func() { _ = unix.Mount("", ro, "", unix.MS_REMOUNT, "") })

	link := t.TempDir()
	if err := os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), filepath.Join(link, watch.LockName)); err != nil {
		t.Fatal(err)
	}

	held := t.TempDir()
	holder, err := watch.AcquireLock(context.Background(), held, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()

	for _, tc := range []struct {
		name, dir string
		want      lockTrouble
	}{
		{"read-only", ro, lockReadOnly},
		{"symlink", link, lockSymlink},
		{"held", held, lockHeld},
	} {
		l, err := watch.AcquireLock(context.Background(), tc.dir, 0)
		if err == nil {
			l.Release()
			t.Errorf("%s: the lock was taken", tc.name)
			continue
		}
		if got, _ := lockHint(tc.dir, err); got != tc.want {
			t.Errorf("%s: %v: trouble %v, want %v", tc.name, err, got, tc.want)
		}
	}
}

// TestLockHintPermission: a user who may not write --out is told so, not
// that another capture is writing there. Permission is checked by the
// kernel only for a user who is not root, so the binary runs as nobody.
func TestLockHintPermission(t *testing.T) {
	testutil.NeedRoot(t, "running the binary as another user")
	// Root's, 0755: nobody may look in, not write.
	dir := worldDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	argv := append(asNobody(setpriv(t)), publicBinary(t), "capture", "--out", dir, "--sample", "0", "--samples", "1")
	r := runArgv(t, "", argv...)
	if r.Code != exitError {
		t.Fatalf("capture as nobody into root's 0755 directory: exit %d, want %d\n%s", r.Code, exitError, r.Stderr)
	}
	if strings.Contains(r.Stderr, "another snapdiag capture") {
		t.Errorf("a permission error is blamed on another capture:\n%s", r.Stderr)
	}
}

// TestOutCreatesLastComponentOnly: --out creates the directory it names, but
// not its missing parents: a typo (/vat/lib/snapdiag) must not grow a tree
// at the root of the filesystem.
func TestOutCreatesLastComponentOnly(t *testing.T) {
	base := t.TempDir()
	for _, cmd := range [][]string{{"capture"}, {"watch", "--once", "--check", "exec:false", "--failures", "1", "--cooldown", "0", "--min-free", "0"}} {
		out := filepath.Join(base, "missing", "bundles")
		r := snapdiag(t, nil, append(cmd, "--out", out, "--sample", "0", "--samples", "1")...)
		if r.Code != exitError {
			t.Errorf("%s --out %s: exit %d, want %d\n%s", cmd[0], out, r.Code, exitError, r.Stderr)
		}
		if _, err := os.Stat(filepath.Dir(out)); err == nil {
			t.Errorf("%s --out %s created the missing parent", cmd[0], out)
			os.RemoveAll(filepath.Dir(out))
		}
		// The last component alone is created.
		out = filepath.Join(base, cmd[0])
		if r := snapdiag(t, nil, append(cmd, "--out", out, "--sample", "0", "--samples", "1")...); r.Code == exitError || r.Code == exitUsage {
			t.Errorf("%s --out %s: exit %d\n%s", cmd[0], out, r.Code, r.Stderr)
		}
	}
}
