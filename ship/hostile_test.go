package ship

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/snapdiag/snapdiag/internal/testutil"
)

// hostileKeys are object keys another tool, or anyone with write access to
// the bucket, may put under a fleet's prefix. The store refuses some
// (versitygw 1.8: a key climbing above the bucket, one over its length
// limit) and normalizes others; the test uses what it took.
var hostileKeys = []string{
	"fleet/../../escape.tar.zst",
	"fleet/../outside.tar.zst",
	"fleet/web1/../../../etc/passwd",
	"/fleet/web1/absolute.tar.zst",
	"fleet//web1/double-slash.tar.zst",
	"fleet/./web1/dot.tar.zst",
	"fleet/web1/" + strings.Repeat("a", 900),
	"fleet/web1/" + strings.Repeat("b", 250) + ".tar.zst",
	"fleet/web1/\x01\x1b[2J\x7f.tar.zst",
	"fleet/web1/a\\..\\..\\b.tar.zst",
	"fleet/%2e%2e/encoded.tar.zst",
	"fleet/web1/ spaces and \t tab .tar.zst",
	"fleet/web1/line\nbreak.tar.zst",
	"fleet/..",
}

// TestHostileKeysRealStore: objects under hostile keys, put straight into
// the real store, are listed only when under the prefix, fetched as the
// object they name, and named in errors without control characters; a
// pending sidecar edited to name one of them is refused, and neither push
// --pending nor a file store writes anything anywhere for it.
func TestHostileKeysRealStore(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("bundles")
	c, err := minio.New(strings.TrimPrefix(srv.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(testutil.S3AccessKey, testutil.S3SecretKey, ""), Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	contents := map[string]bool{}
	for _, k := range hostileKeys {
		if _, err := c.PutObject(ctx, "bundles", k, bytes.NewReader([]byte(k)), int64(len(k)), minio.PutObjectOptions{}); err != nil {
			t.Logf("the store refused %q: %v", k, err)
			continue
		}
		contents[k] = true
	}
	if len(contents) < 5 {
		t.Fatalf("the store took %d hostile keys; the test needs some", len(contents))
	}
	s, err := NewS3Store(Target{Scheme: SchemeS3, Bucket: "bundles"}, S3Options{Getenv: srv.Getenv()})
	if err != nil {
		t.Fatal(err)
	}

	// The listing: under the prefix only; each object fetched is the one
	// put (its content is its original key); errors are printable.
	listing := map[string]string{} // key: ETag
	err = s.List(ctx, "fleet", func(l Listed) error {
		listing[l.Key] = l.ETag
		if !strings.HasPrefix(l.Key, "fleet/") {
			t.Errorf("listed %q outside the prefix", l.Key)
		}
		rc, err := s.Get(ctx, l.Key)
		if err != nil {
			if msg := err.Error(); strings.ContainsFunc(msg, func(r rune) bool { return !unicode.IsPrint(r) }) {
				t.Errorf("error about %q holds a control character: %q", l.Key, msg)
			}
			return nil
		}
		data, err := io.ReadAll(io.LimitReader(rc, 4096))
		rc.Close()
		if err != nil || !contents[string(data)] {
			t.Errorf("Get(%q) = %q, %v: not an object the test put", l.Key, data, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(listing) == 0 {
		t.Fatal("nothing listed under the prefix")
	}

	// Sidecars edited to send a bundle to each unsafe key: every one
	// refused, nothing sent, nothing written beside the bundles.
	out := t.TempDir()
	target := Target{Scheme: SchemeS3, Bucket: "bundles"}
	var unsafe []string
	for _, k := range append(hostileKeys, keysOf(listing)...) {
		if CheckKey(k) != nil {
			unsafe = append(unsafe, k)
		}
	}
	for i, k := range unsafe {
		name := "snapdiag-web1-2026010" + string(rune('0'+i%10)) + "T000000Z-" + string(rune('a'+i)) + ".tar.zst"
		if err := os.WriteFile(filepath.Join(out, name), []byte("bundle"), 0o600); err != nil {
			t.Fatal(err)
		}
		side := []byte(`{"format":"snapdiag.pending/v1","bundle":"` + name + `","target":"s3://bundles","key":` + jsonString(k) + `,"created":"2026-01-01T00:00:00Z","attempts":0}`)
		if err := os.WriteFile(PendingPath(filepath.Join(out, name)), side, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := dirNames(t, out)
	p := &Pusher{Target: target, Store: s, Timeout: time.Minute}
	failed, err := p.PushPending(ctx, out, func(path string, _ Result, err error) {
		if !errors.Is(err, ErrKey) {
			t.Errorf("%s: %v, want ErrKey", filepath.Base(path), err)
		}
	})
	if err != nil || failed != len(unsafe) {
		t.Errorf("push --pending: %d failed, %v; want all %d refused", failed, err, len(unsafe))
	}
	if after := dirNames(t, out); !equalStrings(before, after) {
		t.Errorf("push --pending changed the spool:\nbefore %q\nafter  %q", before, after)
	}
	again := map[string]string{}
	if err := s.List(ctx, "", func(l Listed) error { again[l.Key] = l.ETag; return nil }); err != nil {
		t.Fatal(err)
	}
	for k, etag := range listing {
		if again[k] != etag {
			t.Errorf("object %q changed", k)
		}
	}
	if len(again) != len(contents) {
		t.Errorf("the bucket holds %d objects after the refused pushes, want the %d put", len(again), len(contents))
	}

	// A file store given the same keys refuses them and stays empty.
	dir := t.TempDir()
	fs := NewFileStore(dir)
	for _, k := range unsafe {
		if _, _, err := fs.Stat(ctx, k); !errors.Is(err, ErrKey) {
			t.Errorf("file store Stat(%q): %v, want ErrKey", k, err)
		}
		if err := fs.Put(ctx, k, bytes.NewReader([]byte("x")), 1, strings.Repeat("0", 64)); !errors.Is(err, ErrKey) {
			t.Errorf("file store Put(%q): %v, want ErrKey", k, err)
		}
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("file store wrote %q", names)
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func jsonString(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// dirNames lists every path under dir, relative, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
