package ship

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/internal/testutil"
	"golang.org/x/sys/unix"
)

// signingStore is a stand-in S3 endpoint that answers 404 to everything and
// records the access key id each request was signed with (SigV4's
// Authorization: ... Credential=KEYID/DATE/REGION/s3/aws4_request).
type signingStore struct {
	mu     sync.Mutex
	ids    []string
	tokens []string // X-Amz-Security-Token of each request
	URL    string
}

func startSigningStore(t *testing.T) *signingStore {
	s := &signingStore{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := ""
		if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
			id, _, _ = strings.Cut(cred, "/")
		}
		s.mu.Lock()
		s.ids = append(s.ids, id)
		s.tokens = append(s.tokens, r.Header.Get("X-Amz-Security-Token"))
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

func (s *signingStore) keyIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...)
}

// taskRoleEnv makes the process's environment that of an ECS task whose
// role is served at uri, with no other credentials. The container
// variables are read from the process's environment by the client
// library, not through S3Options.Getenv.
func taskRoleEnv(t *testing.T, uri string) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)
}

// TestECSRoleWithIMDSDisabled: an ECS task's role is used whether or not
// the EC2 metadata service is disabled: AWS_EC2_METADATA_DISABLED=true,
// common on ECS and Fargate, turns off the instance metadata lookup only,
// as in the AWS SDKs.
func TestECSRoleWithIMDSDisabled(t *testing.T) {
	const taskKey = "ASIATASKROLE"
	ecs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"AccessKeyId": taskKey, "SecretAccessKey": "task-secret", "Token": "task-token",
			"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	}))
	defer ecs.Close()
	for _, disabled := range []string{"", "true"} {
		t.Run("AWS_EC2_METADATA_DISABLED="+disabled, func(t *testing.T) {
			store := startSigningStore(t)
			taskRoleEnv(t, ecs.URL+"/creds")
			t.Setenv("AWS_EC2_METADATA_DISABLED", disabled)
			s, err := NewS3Store(Target{Scheme: SchemeS3, Bucket: "bundles"}, S3Options{Endpoint: store.URL, Getenv: os.Getenv})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Stat(context.Background(), "p/h/x.tar.zst"); err != nil {
				t.Fatal(err)
			}
			if ids := store.keyIDs(); len(ids) == 0 || ids[0] != taskKey {
				t.Errorf("requests signed with key ids %q, want the task role's %s", ids, taskKey)
			}
		})
	}
}

// TestOpenStoreTouchesNoNetwork: opening an s3 store (what checking
// capture --upload's flags does) asks no metadata service: credentials are
// resolved at the first request, under the upload's deadline, so a capture
// is never started late by a metadata service that does not answer.
func TestOpenStoreTouchesNoNetwork(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	env := map[string]string{"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://" + l.Addr().String()}
	if _, err := Open(Target{Scheme: SchemeS3, Bucket: "b"}, S3Options{Endpoint: "http://127.0.0.1:1", Getenv: func(k string) string { return env[k] }}); err != nil {
		t.Fatal(err)
	}
	// A connection made before Open returned is in the accept queue
	// already: accept once without waiting (the listener's socket is
	// non-blocking, so an empty queue is EAGAIN).
	rc, err := l.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var acceptErr error
	rc.Control(func(fd uintptr) {
		var nfd int
		if nfd, _, acceptErr = unix.Accept(int(fd)); acceptErr == nil {
			unix.Close(nfd)
		}
	})
	if acceptErr == nil {
		t.Error("opening the store connected to the metadata service")
	} else if !errors.Is(acceptErr, unix.EAGAIN) {
		t.Fatal(acceptErr)
	}
}

// TestRoleAnswerBounded: a task endpoint that answers more than
// maxRoleBody bytes is not read to its end, and its role not used.
func TestRoleAnswerBounded(t *testing.T) {
	ecs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat(" ", maxRoleBody)))
		json.NewEncoder(w).Encode(map[string]any{"AccessKeyId": "ASIAHUGE", "SecretAccessKey": "s", "Token": "t",
			"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	}))
	defer ecs.Close()
	store := startSigningStore(t)
	taskRoleEnv(t, ecs.URL+"/creds")
	s, err := NewS3Store(Target{Scheme: SchemeS3, Bucket: "bundles"}, S3Options{Endpoint: store.URL, Getenv: os.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Stat(context.Background(), "p/h/x.tar.zst"); err != nil {
		t.Fatal(err)
	}
	if ids := store.keyIDs(); len(ids) == 0 || ids[0] != "" {
		t.Errorf("requests signed with key ids %q, want none: the answer is over %d bytes", ids, maxRoleBody)
	}
}

// TestRoleSessionTokenNeverShown: the session token of the instance role
// signs the requests (X-Amz-Security-Token) and, like the secret, is in
// no error and no pending sidecar when the store refuses the upload.
func TestRoleSessionTokenNeverShown(t *testing.T) {
	store := startSigningStore(t)
	imds := testutil.StartIMDS(t, testutil.S3AccessKey, testutil.S3SecretKey, testutil.IMDSSessionToken)
	env := map[string]string{"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.Endpoint}
	p, err := Open(Target{Scheme: SchemeS3, Bucket: "bundles"}, S3Options{Endpoint: store.URL, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	path, _ := writeBundleFile(t, t.TempDir(), 100)
	key, _ := p.KeyFor("web1", path)
	_, err = p.Push(context.Background(), path, key)
	if err == nil {
		t.Fatal("push to a store that answers 404 to everything succeeded")
	}
	store.mu.Lock()
	tokens := append([]string(nil), store.tokens...)
	store.mu.Unlock()
	if len(tokens) == 0 || tokens[0] != testutil.IMDSSessionToken {
		t.Fatalf("requests carried session tokens %q, want the role's", tokens)
	}
	sidecar, rerr := os.ReadFile(PendingPath(path))
	if rerr != nil {
		t.Fatal(rerr)
	}
	for what, text := range map[string]string{"error": err.Error(), "pending sidecar": string(sidecar)} {
		for _, secret := range []string{testutil.IMDSSessionToken, testutil.S3SecretKey} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s holds a secret: %s", what, text)
			}
		}
	}
}
