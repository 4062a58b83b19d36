package ship

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapdiag/snapdiag/internal/testutil"
)

// TestPushInstanceRole: with no keys in the environment or the shared
// files, the instance's role is fetched from the metadata service the
// IMDSv2 way (a session token first) and the real store takes it; a role
// whose secret the store refuses gives ErrCredentials naming the key id,
// never the secret.
func TestPushInstanceRole(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("bundles")
	t.Run("accepted", func(t *testing.T) {
		imds := testutil.StartIMDS(t, testutil.S3AccessKey, testutil.S3SecretKey, "")
		p := s3Pusher(t, srv, "s3://bundles/roles", imds.Env(srv)...)
		path, sum := writeBundleFile(t, t.TempDir(), 1000)
		key, _ := p.KeyFor("web1", path)
		res, err := p.Push(context.Background(), path, key)
		if err != nil || res.Outcome != Uploaded || res.SHA256 != sum {
			t.Fatalf("push with the instance role: %+v, %v", res, err)
		}
		if imds.Tokens.Load() == 0 || imds.Credentials.Load() == 0 || imds.Refused.Load() != 0 {
			t.Errorf("metadata service: %d tokens, %d credentials, %d refused; want IMDSv2 only",
				imds.Tokens.Load(), imds.Credentials.Load(), imds.Refused.Load())
		}
	})
	t.Run("refused", func(t *testing.T) {
		const secret = "role-secret-the-store-refuses"
		imds := testutil.StartIMDS(t, testutil.S3AccessKey, secret, "")
		p := s3Pusher(t, srv, "s3://bundles/roles", imds.Env(srv)...)
		path, _ := writeBundleFile(t, t.TempDir(), 100)
		key, _ := p.KeyFor("web1", path)
		_, err := p.Push(context.Background(), path, key)
		if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), testutil.S3AccessKey) {
			t.Fatalf("error %v, want ErrCredentials naming %s", err, testutil.S3AccessKey)
		}
		pd, _ := ReadPending(path)
		for _, s := range []string{err.Error(), pd.LastError} {
			if strings.Contains(s, secret) {
				t.Errorf("the role's secret is printed: %s", s)
			}
		}
	})
}

// TestNoMetadataServiceDoesNotStall: on a host whose metadata address
// accepts connections and never answers, and with no other credentials,
// the push's first request gives up on the role within its bound instead
// of waiting for ever, and does not ask again for each request; the push then
// fails as refused, keeping the bundle.
func TestNoMetadataServiceDoesNotStall(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("bundles")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() { // accept and hold every connection, answering nothing
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			held = append(held, c)
		}
	}()
	env := append(srv.Env(), "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://"+l.Addr().String())
	done := make(chan error, 1)
	path, _ := writeBundleFile(t, t.TempDir(), 100)
	go func() {
		target, _ := ParseTarget("s3://bundles")
		p, err := Open(target, S3Options{Getenv: srv.Getenv(env...)})
		if err != nil {
			done <- err
			return
		}
		p.Timeout = time.Minute
		key, _ := p.KeyFor("web1", path)
		_, err = p.Push(context.Background(), path, key)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrCredentials) {
			t.Errorf("push with a silent metadata service: %v, want ErrCredentials", err)
		}
	case <-time.After(testutil.WaitLimit):
		t.Fatal("push stalled on a metadata service that never answers")
	}
	if !IsPending(path) {
		t.Error("bundle not kept pending")
	}
	// One lookup (a token request, then IMDSv1's role listing), not one
	// per request of the push.
	if n := accepted.Load(); n > 2 {
		t.Errorf("the metadata service was asked %d times, want one lookup", n)
	}
}

// TestSSOProfileRefused: a profile that signs in through AWS SSO, with no
// other credentials, is refused at once with one line naming the profile.
func TestSSOProfileRefused(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	if err := os.WriteFile(config, []byte("[profile corp]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = eu-west-1\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AWS_PROFILE": "corp", "AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"), "AWS_EC2_METADATA_DISABLED": "true"}
	_, err := NewS3Store(Target{Scheme: SchemeS3, Bucket: "bundles"}, S3Options{Endpoint: "http://127.0.0.1:1", Getenv: func(k string) string { return env[k] }})
	if !errors.Is(err, ErrCredentials) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `"corp"`) {
		t.Errorf("SSO profile: %v, want one line wrapping ErrCredentials that names the profile", err)
	}
}

// TestSSOProfileDecisions: an SSO profile is refused exactly when nothing
// in the chain can sign with it: no static key pair before it, and not
// the sign-in minio-go does itself (the profile's sso_role_name, read from
// the config file, which minio-go reads only when
// AWS_SHARED_CREDENTIALS_FILE names no file of its own). The decision
// reads files only: the sign-in belongs to the first request.
func TestSSOProfileDecisions(t *testing.T) {
	const (
		session  = "[profile corp]\nsso_session = corp\nsso_account_id = 111122223333\nregion = eu-west-1\n"
		roleName = "sso_role_name = Admin\n"
		keys     = "aws_access_key_id = AKIDCORP\naws_secret_access_key = corp-secret\n"
		tail     = "\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n"
	)
	cases := []struct {
		name        string
		config      string
		credentials string // the [corp] section's body, "" for no file
		credsEnv    bool   // AWS_SHARED_CREDENTIALS_FILE names the file
		env         map[string]string
		refused     bool
	}{
		{name: "role name, minio-go signs in", config: session + roleName + tail},
		{name: "role name but a credentials file named", config: session + roleName + tail, credsEnv: true, refused: true},
		{name: "no role name", config: session + tail, refused: true},
		{name: "static keys in the credentials file", config: session + tail, credentials: keys, credsEnv: true},
		{name: "static keys in the default credentials file", config: session + tail, credentials: keys},
		{name: "static keys in the profile", config: session + keys + tail},
		{name: "static keys in the profile, not read", config: session + keys + tail, credsEnv: true, refused: true},
		{name: "keys in the environment", config: session + tail, env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "env-secret"}},
		{name: "not an SSO profile", config: "[profile corp]\nregion = eu-west-1\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home := t.TempDir()
			aws := filepath.Join(home, ".aws")
			if err := os.Mkdir(aws, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(aws, "config"), []byte(c.config), 0o600); err != nil {
				t.Fatal(err)
			}
			creds := filepath.Join(aws, "credentials")
			if c.credentials != "" {
				if err := os.WriteFile(creds, []byte("[corp]\n"+c.credentials), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{"HOME": home, "AWS_PROFILE": "corp"}
			if c.credsEnv {
				env["AWS_SHARED_CREDENTIALS_FILE"] = creds
			}
			for k, v := range c.env {
				env[k] = v
			}
			getenv := func(k string) string { return env[k] }
			err := refuseSSO(getenv, "corp", configProfile(getenv, "corp"))
			if refused := errors.Is(err, ErrCredentials); refused != c.refused || (err != nil && !refused) {
				t.Errorf("refuseSSO: %v, want refused %v", err, c.refused)
			}
		})
	}
}
