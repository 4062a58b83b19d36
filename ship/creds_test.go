package ship

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
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

// TestSSOProfiles: an AWS SSO profile is read by minio-go itself at the
// first request, never when the store is opened; one that gives no key
// (an expired `aws sso login` token, settings it cannot follow, a named
// credentials file that holds none) fails that request with one line
// wrapping ErrCredentials that names the profile, instead of going on
// anonymous, and the bundle stays pending; a key pair beside the SSO
// settings signs, against the real store. None of these cases asks the
// network for the sign-in: minio-go checks the token's expiry first.
func TestSSOProfiles(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("bundles")
	const (
		profile = "[profile corp]\nsso_session = corp\nsso_account_id = 111122223333\nregion = us-east-1\n"
		role    = "sso_role_name = Admin\n"
		session = "\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n"
	)
	const pasted = "wJalrXUtnFEMI-PASTED-SECRET"
	cases := []struct {
		name      string
		config    string
		creds     string // the credentials file's content, "" for no file
		namedFile bool   // AWS_SHARED_CREDENTIALS_FILE names the credentials file
		signs     bool
		cause     string // in the error: why, in snapdiag's words
	}{
		{name: "expired token", config: profile + role + session, cause: "expired"},
		{name: "no role name", config: profile + session, cause: "no sso_role_name"},
		{name: "credentials file named, without a key", config: profile + role + session, namedFile: true,
			creds: "[corp]\nregion = us-east-1\n", cause: "AWS_SHARED_CREDENTIALS_FILE"},
		// The parse error of such a file quotes the line, secret and all.
		{name: "a secret pasted on a line of its own", config: profile + role + session,
			creds: "[other]\n" + pasted + "\n", cause: "not shown"},
		{name: "key pair beside the SSO settings", config: profile + role + session, signs: true,
			creds: "[corp]\naws_access_key_id = " + testutil.S3AccessKey + "\naws_secret_access_key = " + testutil.S3SecretKey + "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home := t.TempDir()
			cache := filepath.Join(home, ".aws", "sso", "cache")
			if err := os.MkdirAll(cache, 0o700); err != nil {
				t.Fatal(err)
			}
			sum := sha1.Sum([]byte("corp"))
			token := `{"accessToken":"expired-token","expiresAt":"2020-01-01T00:00:00Z","region":"eu-west-1"}`
			if err := os.WriteFile(filepath.Join(cache, hex.EncodeToString(sum[:])+".json"), []byte(token), 0o600); err != nil {
				t.Fatal(err)
			}
			config := filepath.Join(home, ".aws", "config")
			if err := os.WriteFile(config, []byte(c.config), 0o600); err != nil {
				t.Fatal(err)
			}
			creds := filepath.Join(home, ".aws", "credentials")
			if c.creds != "" {
				if err := os.WriteFile(creds, []byte(c.creds), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			named := ""
			if c.namedFile {
				named = creds
			}
			// minio-go reads the files through the process's environment.
			for k, v := range map[string]string{"HOME": home, "AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": named} {
				t.Setenv(k, v)
			}
			p := s3Pusher(t, srv, "s3://bundles/sso", "HOME="+home, "AWS_PROFILE=corp", "AWS_CONFIG_FILE="+config,
				"AWS_SHARED_CREDENTIALS_FILE="+named, "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_EC2_METADATA_DISABLED=true")
			path, _ := writeBundleFile(t, t.TempDir(), 1000)
			key, _ := p.KeyFor("web1", path)
			_, err := p.Push(context.Background(), path, key)
			if c.signs {
				if err != nil {
					t.Fatalf("push with the profile's key pair: %v", err)
				}
				// A key without an expiry is not read again for the
				// next request (each part of a multipart upload).
				if p.Store.(*S3Store).keys.IsExpired() {
					t.Error("the profile's key pair counts as expired right after it signed")
				}
				return
			}
			t.Log(err)
			if !errors.Is(err, ErrCredentials) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `"corp"`) ||
				!strings.Contains(err.Error(), c.cause) {
				t.Errorf("push: %v, want one line wrapping ErrCredentials that names the profile and says %q", err, c.cause)
			}
			if strings.Contains(err.Error(), pasted) {
				t.Errorf("the error quotes the credentials file: %v", err)
			}
			if !IsPending(path) {
				t.Errorf("%s is not pending after the refusal", path)
			}
		})
	}
}

// TestPushWebIdentity: with AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN
// (a pod's role on EKS) and no keys anywhere else, the pod's token is
// exchanged at STS (AWS_ENDPOINT_URL_STS, here a loopback stand-in that
// answers as AWS does) for the role's keys, which the real store takes;
// the token travels to STS only and is in no error or sidecar.
func TestPushWebIdentity(t *testing.T) {
	srv := testutil.StartS3(t)
	srv.Bucket("bundles")
	const (
		token = "eyJ-pod-token-never-printed"
		arn   = "arn:aws:iam::111122223333:role/snapdiag"
	)
	var exchanges, wrong atomic.Int64
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("Action") != "AssumeRoleWithWebIdentity" ||
			r.PostForm.Get("WebIdentityToken") != token || r.PostForm.Get("RoleArn") != arn {
			wrong.Add(1)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		exchanges.Add(1)
		// No session token: versitygw refuses any.
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><Expiration>%s</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`,
			testutil.S3AccessKey, testutil.S3SecretKey, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	defer sts.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	pod := []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_WEB_IDENTITY_TOKEN_FILE=" + tokenFile,
		"AWS_ROLE_ARN=" + arn, "AWS_ENDPOINT_URL_STS=" + sts.URL, "AWS_EC2_METADATA_DISABLED=true"}
	p := s3Pusher(t, srv, "s3://bundles/pods", append(pod, "AWS_ROLE_SESSION_NAME=snapdiag")...)
	path, sum := writeBundleFile(t, t.TempDir(), 1000)
	key, _ := p.KeyFor("web1", path)
	res, err := p.Push(context.Background(), path, key)
	if err != nil || res.Outcome != Uploaded || res.SHA256 != sum {
		t.Fatalf("push with the pod's role: %+v, %v", res, err)
	}
	if exchanges.Load() == 0 || wrong.Load() != 0 {
		t.Errorf("STS: %d exchanges, %d malformed requests", exchanges.Load(), wrong.Load())
	}
	// A token STS refuses: the push fails, the bundle stays pending, and
	// neither the error nor the sidecar carries the token.
	if err := os.WriteFile(tokenFile, []byte(token+"-revoked"), 0o600); err != nil {
		t.Fatal(err)
	}
	p = s3Pusher(t, srv, "s3://bundles/pods", pod...)
	path, _ = writeBundleFile(t, t.TempDir(), 100)
	key, _ = p.KeyFor("web1", path)
	if _, err = p.Push(context.Background(), path, key); !errors.Is(err, ErrCredentials) || wrong.Load() == 0 {
		t.Fatalf("push with a token STS refused (%d refusals): %v, want ErrCredentials", wrong.Load(), err)
	}
	if !IsPending(path) {
		t.Errorf("%s is not pending", path)
	}
	pd, _ := ReadPending(path)
	for _, s := range []string{err.Error(), pd.LastError} {
		if strings.Contains(s, token) {
			t.Errorf("the pod's token is printed: %s", s)
		}
	}
}
