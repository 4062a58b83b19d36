package ship

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/snapdiag/snapdiag/internal/testutil"
)

// writeBundleFile writes size random bytes as a bundle-named file: the
// store does not read bundles, so their content is any bytes.
func writeBundleFile(t *testing.T, dir string, size int) (string, string) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	p := filepath.Join(dir, "snapdiag-web1-20260101T000000Z.tar.zst")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return p, hex.EncodeToString(sum[:])
}

func s3Pusher(t *testing.T, srv *testutil.S3Server, url string, extraEnv ...string) *Pusher {
	t.Helper()
	target, err := ParseTarget(url)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(target, S3Options{Getenv: srv.Getenv(extraEnv...), PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	p.Timeout = time.Minute
	return p
}

func TestPushS3(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("bundles")
	p := s3Pusher(t, srv, "s3://bundles/fleet/prod")
	for _, size := range []int{1000, 12 << 20} { // one PUT, then multipart
		dir := t.TempDir()
		path, sum := writeBundleFile(t, dir, size)
		key, err := p.KeyFor("web1", path)
		if err != nil {
			t.Fatal(err)
		}
		if err := MarkPending(path, p.Target, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		res, err := p.Push(context.Background(), path, key)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if res.Outcome != Uploaded || res.SHA256 != sum {
			t.Errorf("size %d: outcome %s sum %s, want uploaded %s", size, res.Outcome, res.SHA256, sum)
		}
		if IsPending(path) {
			t.Errorf("size %d: still pending after the upload", size)
		}
		// The object is the bundle, byte for byte, under PREFIX/HOST/NAME.
		got, err := os.ReadFile(filepath.Join(srv.Root, "bundles", "fleet/prod/web1", filepath.Base(path)))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(path)
		if !bytes.Equal(got, want) {
			t.Errorf("size %d: stored object differs from the bundle", size)
		}
		res, err = p.Push(context.Background(), path, key)
		if err != nil || res.Outcome != Present {
			t.Errorf("size %d: second push: outcome %s, %v; want present", size, res.Outcome, err)
		}
	}
}

func TestPushFile(t *testing.T) {
	store := t.TempDir()
	target, err := ParseTarget("file://" + store + "/p")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := Open(target, S3Options{})
	path, sum := writeBundleFile(t, t.TempDir(), 5000)
	key, _ := p.KeyFor("../../etc", path)
	res, err := p.Push(context.Background(), path, key)
	if err != nil || res.Outcome != Uploaded {
		t.Fatalf("push: %s, %v", res.Outcome, err)
	}
	obj := filepath.Join(store, "p", ".._.._etc", filepath.Base(path))
	side, err := os.ReadFile(obj + SHA256Suffix)
	if err != nil {
		t.Fatal(err)
	}
	if want := sum + "  " + filepath.Base(path) + "\n"; string(side) != want {
		t.Errorf("sidecar %q, want %q", side, want)
	}
	if res, err := p.Push(context.Background(), path, key); err != nil || res.Outcome != Present {
		t.Errorf("second push: %s, %v; want present", res.Outcome, err)
	}
}

// TestPushErrors: each way a store refuses gives its own kind of error,
// names the key id and never the secret, and leaves the bundle pending
// with the attempt recorded.
func TestPushErrors(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("bundles")
	cases := []struct {
		name string
		url  string
		env  []string
		want error
	}{
		{"wrong secret", "s3://bundles", []string{"AWS_SECRET_ACCESS_KEY=wrong-secret-123"}, ErrCredentials},
		{"unknown key id", "s3://bundles", []string{"AWS_ACCESS_KEY_ID=AKIANOSUCHKEY"}, ErrCredentials},
		{"missing bucket", "s3://nosuchbucket", nil, ErrNoBucket},
		{"unreachable", "s3://bundles", []string{"AWS_ENDPOINT_URL=http://127.0.0.1:1"}, ErrUnreachable},
		{"tls to a plain server", "s3://bundles", []string{"AWS_ENDPOINT_URL=https" + srv.Endpoint[len("http"):]}, ErrTLS},
		{"untrusted certificate", "s3://bundles", []string{"AWS_ENDPOINT_URL=" + tlsFront(t, srv.Endpoint)}, ErrTLS},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := s3Pusher(t, srv, c.url, c.env...)
			path, _ := writeBundleFile(t, t.TempDir(), 100)
			key, _ := p.KeyFor("web1", path)
			_, err := p.Push(context.Background(), path, key)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			data, _ := os.ReadFile(PendingPath(path))
			testutil.ValidateJSON(t, "pending", data)
			pd, rerr := ReadPending(path)
			if rerr != nil || pd.Attempts != 1 || pd.Key != key {
				t.Errorf("pending sidecar %+v, %v; want one attempt for %s", pd, rerr, key)
			}
			for _, secret := range []string{testutil.S3SecretKey, "wrong-secret-123"} {
				if bytes.Contains([]byte(err.Error()), []byte(secret)) || bytes.Contains([]byte(pd.LastError), []byte(secret)) {
					t.Errorf("the secret is in the error or the sidecar: %v", err)
				}
			}
			if _, statErr := os.Stat(path); statErr != nil {
				t.Errorf("bundle gone: %v", statErr)
			}
		})
	}
}

// tlsFront is a TLS server with a self-signed certificate in front of the
// store at endpoint.
func tlsFront(t *testing.T, endpoint string) string {
	u, _ := url.Parse(endpoint)
	ts := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(u))
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestParseTarget(t *testing.T) {
	good := map[string]Target{
		"s3://b-1.x":        {Scheme: SchemeS3, Bucket: "b-1.x"},
		"s3://bkt/a/b/":     {Scheme: SchemeS3, Bucket: "bkt", Prefix: "a/b"},
		"file:///srv/snaps": {Scheme: SchemeFile, Dir: "/srv/snaps"},
	}
	for in, want := range good {
		got, err := ParseTarget(in)
		if err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"s3://B", "s3://bk/../x", "s3://user:secret@bkt", "file://host/x", "file:///a/../b", "http://x", "s3://bkt/a//b?x=1", "file:relative"} {
		if _, err := ParseTarget(in); err == nil {
			t.Errorf("ParseTarget(%q) accepted", in)
		}
	}
}

// FuzzKey: whatever the host and name, a key Key returns is relative,
// stays under its prefix and passes CheckKey.
func FuzzKey(f *testing.F) {
	for _, s := range [][2]string{{"web1", "snapdiag-web1-20260101T000000Z.tar.zst"}, {"..", ".."}, {"/etc", "passwd"}, {"a/../../b", "x"}, {"", "."}, {"\x00", "a\\b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, host, name string) {
		k, err := Key("fleet", host, name)
		if err != nil {
			return
		}
		if err := CheckKey(k); err != nil {
			t.Fatalf("Key(%q, %q) = %q fails CheckKey: %v", host, name, k, err)
		}
		if filepath.IsAbs(k) || !filepath.IsLocal(k) || filepath.Dir(filepath.Dir(k)) != "fleet" {
			t.Fatalf("Key(%q, %q) = %q leaves its prefix", host, name, k)
		}
	})
}

// FuzzParsePending: a sidecar is read from a directory others may write;
// whatever it holds, parsing does not panic and a key it accepts is safe.
func FuzzParsePending(f *testing.F) {
	f.Add([]byte(`{"format":"snapdiag.pending/v1","bundle":"b.tar.zst","target":"s3://bkt","key":"h/b.tar.zst","created":"2026-01-01T00:00:00Z","attempts":2}`))
	f.Add([]byte(`{"format":"snapdiag.pending/v1","bundle":"b.tar.zst","key":"../../etc/passwd"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pd, err := ParsePending(data, "b.tar.zst")
		if err != nil {
			return
		}
		if !filepath.IsLocal(pd.Key) {
			t.Fatalf("accepted key %q", pd.Key)
		}
	})
}

// TestPutAbortsStaleUploads: the multipart upload a killed push left
// behind is aborted by the next push of that key, so its parts stop
// costing storage.
func TestPutAbortsStaleUploads(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("bundles")
	p := s3Pusher(t, srv, "s3://bundles")
	path, _ := writeBundleFile(t, t.TempDir(), 6<<20)
	key, _ := p.KeyFor("web1", path)
	core, err := minio.NewCore(strings.TrimPrefix(srv.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(testutil.S3AccessKey, testutil.S3SecretKey, ""), Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := core.NewMultipartUpload(ctx, "bundles", key, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	incomplete := func() int {
		n := 0
		for u := range core.ListIncompleteUploads(ctx, "bundles", key, true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			n++
		}
		return n
	}
	if n := incomplete(); n != 1 {
		t.Fatalf("%d incomplete uploads before the push, want 1", n)
	}
	if _, err := p.Push(ctx, path, key); err != nil {
		t.Fatal(err)
	}
	if n := incomplete(); n != 0 {
		t.Errorf("%d incomplete uploads after the push, want 0", n)
	}
}

// TestEndpointSecretNotEchoed: an endpoint URL carrying credentials is
// refused (they would be ignored: credentials come from AWS_* and the
// shared file), and the refusal never prints the password.
func TestEndpointSecretNotEchoed(t *testing.T) {
	target := Target{Scheme: SchemeS3, Bucket: "fleet"}
	for _, endpoint := range []string{
		"http://AKID:hunter2secret@127.0.0.1:9000",
		"ftp://AKID:hunter2secret@127.0.0.1:9000",
		"https://AKID:hunter2secret@s3.example.com",
	} {
		_, err := NewS3Store(target, S3Options{Endpoint: endpoint, Getenv: func(string) string { return "" }})
		if err == nil {
			t.Errorf("endpoint %s: accepted, want refused", endpoint)
			continue
		}
		if !errors.Is(err, ErrTarget) {
			t.Errorf("endpoint %s: %v, want ErrTarget", endpoint, err)
		}
		if strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("endpoint error prints the password: %v", err)
		}
	}
}
