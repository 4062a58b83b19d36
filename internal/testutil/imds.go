package testutil

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// IMDS is a loopback stand-in for the EC2 instance metadata service, the
// IMDSv2 way: a PUT of /latest/api/token (with the TTL header) returns a
// session token, and the role's name and credentials under
// /latest/meta-data/iam/security-credentials/ are served only to requests
// carrying that token. It hands out the key it was given, so the real store
// decides whether the credentials are good.
type IMDS struct {
	// Endpoint is the service's URL, for AWS_EC2_METADATA_SERVICE_ENDPOINT.
	Endpoint string
	// Tokens counts the session tokens issued, Credentials the credential
	// documents served, Refused the requests refused for want of a token.
	Tokens, Credentials, Refused atomic.Int32
}

// imdsRole is the role name the fake reports.
const imdsRole = "snapdiag-test-role"

// imdsToken is the session token the fake issues.
const imdsToken = "imds-session-token"

// IMDSSessionToken is the session token of the role's credentials the fake
// hands out (AWS_SESSION_TOKEN's counterpart): a secret, which tests check
// is never printed, logged or written.
const IMDSSessionToken = "imds-role-session-token-never-printed"

// StartIMDS starts the fake on loopback, handing out keyID, secret and
// sessionToken (IMDSSessionToken, or "" for none: versitygw refuses every
// request that carries a session token, with a 400), and stops it at the
// test's end.
func StartIMDS(t testing.TB, keyID, secret, sessionToken string) *IMDS {
	m := &IMDS{}
	const creds = "/latest/meta-data/iam/security-credentials/"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
				http.Error(w, "missing ttl", http.StatusBadRequest)
				return
			}
			m.Tokens.Add(1)
			w.Write([]byte(imdsToken))
			return
		}
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, creds) {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("X-aws-ec2-metadata-token") != imdsToken {
			m.Refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch strings.TrimPrefix(r.URL.Path, creds) {
		case "":
			w.Write([]byte(imdsRole + "\n"))
		case imdsRole:
			m.Credentials.Add(1)
			json.NewEncoder(w).Encode(map[string]any{
				"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": keyID, "SecretAccessKey": secret,
				"Token": sessionToken, "Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
				"LastUpdated": time.Now().UTC().Format(time.RFC3339),
			})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	m.Endpoint = ts.URL
	return m
}

// Env is the environment of a host whose only credentials are the
// instance role this fake serves: srv's endpoint and region, no keys.
func (m *IMDS) Env(srv *S3Server) []string {
	return append(srv.Env(), "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_EC2_METADATA_SERVICE_ENDPOINT="+m.Endpoint)
}
