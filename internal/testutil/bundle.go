package testutil

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// ReadBundle reads every member of the bundle at path with a plain tar and
// zstd reader, as any reader without snapdiag would, and returns them by
// name.
func ReadBundle(t testing.TB, path string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	eachMember(t, path, func(name string, r io.Reader) bool {
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read %s: %s: %v", path, name, err)
		}
		out[name] = data
		return true
	})
	return out
}

// ReadMember returns one member of the bundle at path, or nil when the
// bundle has no such member.
func ReadMember(t testing.TB, path, name string) []byte {
	t.Helper()
	var data []byte
	eachMember(t, path, func(n string, r io.Reader) bool {
		if n != name {
			return true
		}
		var err error
		if data, err = io.ReadAll(r); err != nil {
			t.Fatalf("read %s: %s: %v", path, name, err)
		}
		if data == nil {
			data = []byte{}
		}
		return false
	})
	return data
}

// eachMember calls fn with each member of the bundle at path until it
// returns false.
func eachMember(t testing.TB, path string, fn func(name string, r io.Reader) bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		if !fn(h.Name, tr) {
			return
		}
	}
}
