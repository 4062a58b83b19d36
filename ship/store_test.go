package ship

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestFileStoreLinkedHost: a host directory of a file store replaced by a
// symbolic link (to a directory outside the store, or to another host's
// inside it) is refused: the push fails, keeps the bundle pending, and
// nothing is written through the link. A stored object whose checksum
// sidecar is a link is not trusted either.
func TestFileStoreLinkedHost(t *testing.T) {
	for _, to := range []string{"outside", "inside"} {
		t.Run(to, func(t *testing.T) {
			store := t.TempDir()
			dest := t.TempDir()
			if to == "inside" {
				dest = filepath.Join(store, "p", "db1")
			}
			if err := os.MkdirAll(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(store, "p"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(dest, filepath.Join(store, "p", "web1")); err != nil {
				t.Fatal(err)
			}
			target, err := ParseTarget("file://" + store + "/p")
			if err != nil {
				t.Fatal(err)
			}
			p, _ := Open(target, S3Options{})
			path, _ := writeBundleFile(t, t.TempDir(), 100)
			key, _ := p.KeyFor("web1", path)
			if _, err := p.Push(context.Background(), path, key); !errors.Is(err, ErrStoreLink) {
				t.Errorf("push through a linked host directory: %v, want ErrStoreLink", err)
			}
			if !IsPending(path) {
				t.Error("refused push left the bundle unmarked")
			}
			if entries, _ := os.ReadDir(dest); len(entries) != 0 {
				t.Errorf("written through the link: %v", entries)
			}
		})
	}
	t.Run("sidecar", func(t *testing.T) {
		store := t.TempDir()
		p, _ := Open(Target{Scheme: SchemeFile, Dir: store}, S3Options{})
		path, sum := writeBundleFile(t, t.TempDir(), 100)
		key, _ := p.KeyFor("web1", path)
		if _, err := p.Push(context.Background(), path, key); err != nil {
			t.Fatal(err)
		}
		// The sidecar replaced by a link to a file inside the store that
		// holds the right checksum (the store's root allows such a link,
		// so only the regular-file check refuses it): Stat must not take
		// it.
		other := filepath.Join(store, "sum")
		if err := os.WriteFile(other, []byte(sum+"  x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		side := filepath.Join(store, filepath.FromSlash(key)) + SHA256Suffix
		if err := os.Remove(side); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(other, side); err != nil {
			t.Fatal(err)
		}
		obj, ok, err := p.Store.Stat(context.Background(), key)
		if err != nil || !ok || obj.SHA256 != "" {
			t.Errorf("stat with a linked sidecar: %+v, %v, %v; want the object without a checksum", obj, ok, err)
		}
	})
}
