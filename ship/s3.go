package ship

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"gopkg.in/ini.v1"
)

// DefaultPartSize is the multipart threshold and part size: a bundle up to
// this size goes in one PUT, a larger one in parts of this size, read from
// the file part by part, so memory stays bounded whatever the bundle's size.
const DefaultPartSize = 16 << 20

// partThreads is how many parts are in flight at once: with the part size,
// it bounds the upload's memory (the client reads each part through a
// section of the file, hashing it before it is sent).
const partThreads = 2

// metaSHA256 is the user metadata (x-amz-meta-snapdiag-sha256) holding the
// bundle's SHA-256 in hex. It is the object's checksum for every store and
// every upload, single PUT or multipart: the x-amz-checksum-sha256 header,
// sent too, is a checksum of part checksums for a multipart object.
const metaSHA256 = "Snapdiag-Sha256"

// S3Options configure an s3 target's client. Unset fields come from the
// environment the way the AWS tools read it.
type S3Options struct {
	// Endpoint is the store's URL (http://127.0.0.1:9000); empty takes
	// AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS S3 itself.
	Endpoint string
	// Region; empty takes AWS_REGION, AWS_DEFAULT_REGION, then the profile's
	// region in the shared config file, then us-east-1.
	Region string
	// PartSize is the multipart threshold and part size (0: DefaultPartSize;
	// S3's minimum part is 5 MiB).
	PartSize int64
	// Getenv reads the environment; nil is os.Getenv.
	Getenv func(string) string
	// Transport carries the requests; nil is a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// S3Store is an s3://BUCKET/PREFIX target.
type S3Store struct {
	client   *minio.Client
	bucket   string
	partSize int64
	// keys is the credential chain; its access key id is named in
	// credential errors (never the secret).
	keys     *keyRecorder
	endpoint string
}

// NewS3Store returns the store of target t, an s3 target. Credentials are
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, else the
// shared credentials file (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials)
// at AWS_PROFILE's profile, else a web identity or the instance's role
// (roleProviders), all asked at the first request. A profile that signs
// in through AWS SSO and gives no key fails that request with an error
// wrapping ErrCredentials (profileProvider). Addressing is path-style,
// which a self-hosted store (MinIO, Ceph RGW, SeaweedFS) needs, for every
// endpoint but AWS's, GCS's and Aliyun's (minio.BucketLookupAuto).
func NewS3Store(t Target, o S3Options) (*S3Store, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	endpoint := firstNonEmpty(o.Endpoint, getenv("AWS_ENDPOINT_URL_S3"), getenv("AWS_ENDPOINT_URL"), "https://s3.amazonaws.com")
	u, err := url.Parse(endpoint)
	if err != nil {
		// url's error quotes the whole input, which may hold a password.
		return nil, fmt.Errorf("%w: endpoint: not a URL: want http(s)://HOST[:PORT]", ErrTarget)
	}
	if u.User != nil {
		// Credentials in the endpoint would be ignored (they come from
		// AWS_* and the shared file) and then printed in every log line
		// naming the endpoint: refuse them, never echoing them.
		return nil, fmt.Errorf("%w: endpoint %q holds credentials: put them in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", ErrTarget, u.Redacted())
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: endpoint %q: want http(s)://HOST[:PORT]", ErrTarget, endpoint)
	}
	profile := firstNonEmpty(getenv("AWS_PROFILE"), "default")
	config := configProfile(getenv, profile)
	region := firstNonEmpty(o.Region, getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), config["region"], "us-east-1")
	named := getenv("AWS_SHARED_CREDENTIALS_FILE")
	file := &profileProvider{p: &credentials.FileAWSCredentials{Filename: named, Profile: profile}}
	inCreds, inConfig := ssoProfile(credentialsProfile(getenv, profile)), ssoProfile(config)
	if inCreds || inConfig {
		file.sso = profile
	}
	if !inCreds && inConfig {
		// minio-go reads the config file only beside the default
		// credentials file: a named one hides the SSO settings.
		file.hiddenBy = named
	}
	tr := o.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	// The environment first, then the shared file, then the roles a
	// machine or a pod is given: the order of the AWS CLI. An environment
	// with only a key id and no secret is not used. Nothing is asked
	// here: the chain is walked at the first request, under its context
	// (the upload's deadline), so that opening a store, which capture
	// --upload does before it captures, never touches the network.
	keys := &keyRecorder{p: &credChain{links: append([]credentials.Provider{&envProvider{getenv: getenv}, file},
		roleProviders(getenv, region, tr)...)}}
	creds := credentials.New(keys)
	c, err := minio.New(u.Host, &minio.Options{
		Creds: creds, Secure: u.Scheme == "https", Region: region,
		BucketLookup: minio.BucketLookupAuto, Transport: tr,
		// Our own retries (watch's backoff, the pending spool) take over
		// from the client's: a store that refuses must not hold an upload
		// for minutes inside one attempt.
		MaxRetries: 1,
		// The SHA-256 checksum goes as a trailer of the streamed body, so
		// the file is read once per part, not once to hash and again to
		// send.
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", u.Host, err)
	}
	ps := o.PartSize
	if ps <= 0 {
		ps = DefaultPartSize
	}
	return &S3Store{client: c, bucket: t.Bucket, partSize: ps, keys: keys, endpoint: u.Host}, nil
}

// keyRecorder is the credential chain, remembering the access key id it
// last gave, for errors to name (never the secret).
type keyRecorder struct {
	p  credentials.Provider
	mu sync.Mutex
	id string
}

func (k *keyRecorder) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	v, err := k.p.RetrieveWithCredContext(cc)
	k.mu.Lock()
	k.id = v.AccessKeyID
	k.mu.Unlock()
	return v, err
}

func (k *keyRecorder) Retrieve() (credentials.Value, error) { return k.RetrieveWithCredContext(nil) }

func (k *keyRecorder) IsExpired() bool { return k.p.IsExpired() }

// keyID is the access key id the requests were last signed with, "" for
// none (anonymous, or no request yet).
func (k *keyRecorder) keyID() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.id
}

// envProvider is minio's EnvAWS without its MinIO-specific fallbacks:
// exactly AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
type envProvider struct {
	getenv func(string) string
	done   bool
}

func (p *envProvider) Retrieve() (credentials.Value, error) {
	return p.RetrieveWithCredContext(nil)
}

func (p *envProvider) RetrieveWithCredContext(*credentials.CredContext) (credentials.Value, error) {
	id, secret := p.getenv("AWS_ACCESS_KEY_ID"), p.getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return credentials.Value{}, errors.New("no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	p.done = true
	return credentials.Value{
		AccessKeyID: id, SecretAccessKey: secret, SessionToken: p.getenv("AWS_SESSION_TOKEN"),
		SignerType: credentials.SignatureV4,
	}, nil
}

func (p *envProvider) IsExpired() bool { return !p.done }

// configProfile is the settings of profile in the shared config file
// (AWS_CONFIG_FILE, ~/.aws/config), where it is [default] or [profile
// NAME]; nil when there is none.
func configProfile(getenv func(string) string, profile string) map[string]string {
	section := "profile " + profile
	if profile == "default" {
		section = "default"
	}
	return iniSection(getenv, "AWS_CONFIG_FILE", "config", section)
}

// credentialsProfile is the settings of profile, the section [NAME], in
// the shared credentials file (AWS_SHARED_CREDENTIALS_FILE,
// ~/.aws/credentials); nil when there is none.
func credentialsProfile(getenv func(string) string, profile string) map[string]string {
	return iniSection(getenv, "AWS_SHARED_CREDENTIALS_FILE", "credentials", profile)
}

// iniSection is the keys of section in the file the variable env names,
// else in ~/.aws/name; nil when either is missing.
func iniSection(getenv func(string) string, env, name, section string) map[string]string {
	file := getenv(env)
	if file == "" {
		home := getenv("HOME")
		if home == "" {
			return nil
		}
		file = filepath.Join(home, ".aws", name)
	}
	cfg, err := ini.Load(file)
	if err != nil {
		return nil
	}
	s, err := cfg.GetSection(section)
	if err != nil {
		return nil
	}
	return s.KeysHash()
}

// roleTimeout bounds each request for a role's credentials (the instance
// metadata service, an ECS task's endpoint, STS): on a host that has none
// (not on EC2), the dial to 169.254.169.254 fails or times out within it,
// and the push goes on without credentials instead of stalling.
const roleTimeout = 2 * time.Second

// maxRoleBody bounds the answer of a metadata service, an ECS task's
// endpoint or STS read for credentials: a few hundred bytes when they are
// what they claim, and whoever answers there is not to make snapdiag read
// without end.
const maxRoleBody = 64 << 10

// roleProviders are the last links of the credential chain: a web identity
// (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, as EKS gives a pod;
// exchanged at STS, AWS_ENDPOINT_URL_STS or the region's, through s3's
// transport and so its proxy), else an ECS task's role
// (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI), else the
// instance's role (IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT or
// 169.254.169.254) unless AWS_EC2_METADATA_DISABLED is true: as in the AWS
// SDKs, that variable turns off the instance metadata service only, and an
// ECS or Fargate task commonly sets it.
func roleProviders(getenv func(string) string, region string, s3 http.RoundTripper) []credentials.Provider {
	if file, arn := getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), getenv("AWS_ROLE_ARN"); file != "" && arn != "" {
		client := &http.Client{Timeout: roleTimeout, Transport: capBody{s3, maxRoleBody}}
		p := &credentials.IAM{Client: client, Region: region, Endpoint: getenv("AWS_ENDPOINT_URL_STS")}
		p.EKSIdentity.TokenFile, p.EKSIdentity.RoleARN, p.EKSIdentity.RoleSessionName = file, arn, getenv("AWS_ROLE_SESSION_NAME")
		return []credentials.Provider{&roleProvider{p: p}}
	}
	// Never through a proxy: the metadata and task endpoints are
	// link-local or loopback, and their answer holds a secret.
	client := &http.Client{Timeout: roleTimeout, Transport: capBody{&http.Transport{
		DialContext: (&net.Dialer{Timeout: roleTimeout}).DialContext, ResponseHeaderTimeout: roleTimeout,
	}, maxRoleBody}}
	if rel, full := getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"); rel != "" || full != "" {
		// No Endpoint: with one (the metadata service's), the library
		// would send the task's request there.
		p := &credentials.IAM{Client: client}
		p.Container.CredentialsRelativeURI, p.Container.CredentialsFullURI = rel, full
		// No AuthorizationToken: minio-go reads AWS_CONTAINER_AUTHORIZATION_TOKEN
		// itself, and takes a token set here for the name of a token file.
		return []credentials.Provider{&roleProvider{p: p}}
	}
	if strings.EqualFold(getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		return nil
	}
	return []credentials.Provider{&roleProvider{p: &credentials.IAM{Client: client, Endpoint: getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")}}}
}

// capBody is a transport whose responses end in an error past max bytes.
type capBody struct {
	rt  http.RoundTripper
	max int64
}

func (c capBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: c.max}
	return resp, nil
}

// cappedBody reads at most left bytes of rc, then fails.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the cap from a longer one.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("credentials response larger than %d bytes", maxRoleBody)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// roleRetry is how long a role lookup that failed is not tried again.
const roleRetry = 5 * time.Minute

// roleProvider asks p, but after a failure not again for roleRetry. With
// no credentials at all, the chain is walked before every request; without
// this, each request of a push on a host with no metadata service would
// wait roleTimeout again.
type roleProvider struct {
	p        credentials.Provider
	failedAt time.Time
}

func (r *roleProvider) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	if !r.failedAt.IsZero() && time.Since(r.failedAt) < roleRetry {
		return credentials.Value{}, errors.New("role credentials: the last lookup failed")
	}
	v, err := r.p.RetrieveWithCredContext(cc)
	if err != nil || v.AccessKeyID == "" {
		if cc == nil || cc.Context == nil || cc.Context.Err() == nil {
			// Not a lookup the caller's deadline cut: that one's next
			// upload asks again.
			r.failedAt = time.Now()
		}
		return credentials.Value{}, err
	}
	r.failedAt = time.Time{}
	return v, nil
}

func (r *roleProvider) Retrieve() (credentials.Value, error) { return r.RetrieveWithCredContext(nil) }

func (r *roleProvider) IsExpired() bool { return r.p.IsExpired() }

// credChain is minio-go's credentials.Chain, the first link with a key
// wins and none means anonymous requests, but a link can also end the
// chain with an error wrapping ErrCredentials: an AWS SSO profile that
// could not sign in, whose user asked for that profile and would get
// requests refused as anonymous (or signed with the machine's role) for
// reasons they cannot see.
type credChain struct {
	links []credentials.Provider
	curr  credentials.Provider
}

func (c *credChain) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	c.curr = nil
	for _, p := range c.links {
		v, err := p.RetrieveWithCredContext(cc)
		if v.AccessKeyID != "" || v.SecretAccessKey != "" {
			c.curr = p
			return v, nil
		}
		if errors.Is(err, ErrCredentials) {
			return credentials.Value{}, err
		}
	}
	return credentials.Value{SignerType: credentials.SignatureAnonymous}, nil
}

func (c *credChain) Retrieve() (credentials.Value, error) { return c.RetrieveWithCredContext(nil) }

func (c *credChain) IsExpired() bool { return c.curr == nil || c.curr.IsExpired() }

// profileProvider is the shared files' link: minio-go's own reading of
// them (a key pair, a credential_process, or an SSO sign-in with the token
// `aws sso login` cached), which runs at the first request, never when the
// store is opened. When the profile signs in through AWS SSO and that
// gives no key, the chain ends there with ErrCredentials, saying why.
type profileProvider struct {
	p credentials.Provider
	// sso is the profile's name when it has SSO settings, else "".
	sso string
	// hiddenBy is AWS_SHARED_CREDENTIALS_FILE when the SSO settings are
	// in the config file, which minio-go then does not read.
	hiddenBy string
	// fresh is until when a key without an expiry (a key pair, a
	// credential_process that gives none) is used without reading the
	// files again.
	fresh time.Time
}

// fileRecheck is how long a key read from the shared files without an
// expiry is used before they are read again: not at every request (each
// part of a multipart upload), but a rotated key is picked up by a
// long-running watch.
const fileRecheck = 5 * time.Minute

func (f *profileProvider) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	f.fresh = time.Time{}
	v, err := f.p.RetrieveWithCredContext(cc)
	if v.AccessKeyID != "" || v.SecretAccessKey != "" {
		if v.Expiration.IsZero() {
			f.fresh = time.Now().Add(fileRecheck)
		}
		return v, err
	}
	if f.sso == "" {
		return v, err
	}
	name := strconv.Quote(f.sso)
	if f.hiddenBy != "" {
		return credentials.Value{}, fmt.Errorf("%w: profile %s signs in through AWS SSO (IAM Identity Center) in the config file, which is not read while AWS_SHARED_CREDENTIALS_FILE names %s: unset it, or export the profile's credentials first (aws configure export-credentials --profile %s --format env)",
			ErrCredentials, name, strconv.Quote(f.hiddenBy), shellWord(f.sso))
	}
	return credentials.Value{}, fmt.Errorf("%w: profile %s signs in through AWS SSO (IAM Identity Center), which gave no credentials: %s; run aws sso login --profile %s, or export its credentials first (aws configure export-credentials --profile %s --format env)",
		ErrCredentials, name, ssoCause(err), shellWord(f.sso), shellWord(f.sso))
}

// ssoCause says why an SSO profile gave no key, in snapdiag's words: the
// library's own message is never repeated, since a parse error of the
// shared files quotes the line it failed on, which may hold a secret.
func ssoCause(err error) string {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case err == nil:
		return "the profile has no key"
	case strings.Contains(msg, "token is expired"):
		return "the token of aws sso login has expired"
	case strings.Contains(msg, "reading cached SSO token"):
		return "there is no token of aws sso login"
	case strings.Contains(msg, "sso_role_name"):
		return "the profile has SSO settings but no sso_role_name, sso_account_id or sso_start_url to sign in with"
	case errors.Is(err, fs.ErrNotExist):
		return "a shared credentials or config file does not exist"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return "the SSO portal did not answer in time"
	}
	return "the shared files or the SSO portal gave an error (not shown: it may quote the files)"
}

// shellWord is name as a word of a shell command, or NAME when it would
// need quoting.
func shellWord(name string) string {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return "NAME"
		}
	}
	return name
}

func (f *profileProvider) Retrieve() (credentials.Value, error) {
	return f.RetrieveWithCredContext(nil)
}

func (f *profileProvider) IsExpired() bool {
	if !f.fresh.IsZero() {
		return time.Now().After(f.fresh)
	}
	return f.p.IsExpired()
}

// ssoProfile says whether a profile's settings sign in through AWS SSO.
func ssoProfile(settings map[string]string) bool {
	for k := range settings {
		if strings.HasPrefix(k, "sso_") {
			return true
		}
	}
	return false
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// Stat heads the object.
func (s *S3Store) Stat(ctx context.Context, key string) (Object, bool, error) {
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		r := minio.ToErrorResponse(err)
		if r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket" {
			return Object{}, false, nil
		}
		return Object{}, false, s.explain("head", key, err)
	}
	obj := Object{Size: info.Size}
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, metaSHA256) || strings.EqualFold(k, "X-Amz-Meta-"+metaSHA256) {
			obj.SHA256 = v
		}
	}
	return obj, true, nil
}

// Put uploads the object: one PUT up to the part size, multipart above it.
// Either is atomic for readers: a single PUT's object appears whole, and a
// multipart object appears only when the upload is completed. Stale
// multipart uploads of this key (a process killed mid-upload) are aborted
// first, so their parts stop costing storage.
func (s *S3Store) Put(ctx context.Context, key string, r io.ReaderAt, size int64, sum string) error {
	if size > s.partSize {
		// Best effort: a store without ListMultipartUploads still takes
		// the upload.
		_ = s.client.RemoveIncompleteUpload(ctx, s.bucket, key)
	}
	_, err := s.client.PutObject(ctx, s.bucket, key, io.NewSectionReader(r, 0, size), size, minio.PutObjectOptions{
		UserMetadata: map[string]string{metaSHA256: sum, "Snapdiag-Size": sizeString(size)},
		ContentType:  "application/zstd",
		Checksum:     minio.ChecksumSHA256,
		PartSize:     uint64(s.partSize),
		NumThreads:   partThreads,
		// The body is sent unsigned (UNSIGNED-PAYLOAD) and its integrity
		// carried by the x-amz-checksum-sha256 trailer, which the store
		// checks: signing the payload as well hashes every byte twice, and
		// versitygw 1.8 refuses the signed-trailer form (BadDigest).
		DisableContentSha256: true,
	})
	if err != nil {
		return s.explain("put", key, err)
	}
	return nil
}

// explain turns a client error into one line that says what to fix,
// wrapping one of the Err* kinds.
func (s *S3Store) explain(op, key string, err error) error {
	// A key read from a listing is anyone's: quoted when it holds a
	// control character or bytes that are not UTF-8, so an error never
	// carries a terminal escape or a line break.
	key = printableKey(key)
	if errors.Is(err, ErrCredentials) {
		// The credential chain's own refusal, one line already.
		return err
	}
	r := minio.ToErrorResponse(err)
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	id := s.keys.keyID()
	if id == "" {
		id = "(none)"
	}
	switch {
	case r.Code == "InvalidAccessKeyId" || r.Code == "SignatureDoesNotMatch" || r.Code == "InvalidToken" || r.Code == "ExpiredToken" ||
		r.Code == "XAdminUserNotFound" || r.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s rejected access key id %s (%s)", ErrCredentials, s.endpoint, id, r.Code)
	case r.Code == "AccessDenied":
		return fmt.Errorf("%w: %s denied %s of s3://%s/%s to access key id %s", ErrCredentials, s.endpoint, op, s.bucket, key, id)
	case r.Code == "NoSuchBucket":
		return fmt.Errorf("%w: bucket %q does not exist at %s", ErrNoBucket, s.bucket, s.endpoint)
	case errors.As(err, &certErr) || errors.As(err, &recErr) || strings.Contains(err.Error(), "x509:") || strings.Contains(err.Error(), "tls:") ||
		strings.Contains(err.Error(), "HTTP response to HTTPS client"):
		return fmt.Errorf("%w: %s: %s", ErrTLS, s.endpoint, oneLine(rootCause(err).Error()))
	case r.StatusCode >= 500 || r.StatusCode == http.StatusTooManyRequests || r.Code == "SlowDown":
		return fmt.Errorf("%w: %s answered %d %s to %s", ErrUnavailable, s.endpoint, r.StatusCode, r.Code, op)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %s did not answer %s in time: %w", ErrUnavailable, s.endpoint, op, err)
	case r.StatusCode == 0:
		return fmt.Errorf("%w: %s: %s", ErrUnreachable, s.endpoint, oneLine(rootCause(err).Error()))
	}
	return fmt.Errorf("%s s3://%s/%s at %s: %d %s: %s", op, s.bucket, key, s.endpoint, r.StatusCode, r.Code, oneLine(r.Message))
}

// printableKey is key as it is when every rune is printable UTF-8, else
// quoted with escapes (strconv.Quote).
func printableKey(key string) string {
	if !utf8.ValidString(key) || strings.ContainsFunc(key, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(key)
	}
	return key
}

// rootCause unwraps err to its innermost error: the url.Error around a
// refused dial says the URL twice before saying "connection refused".
func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// The kinds of upload failure. Every one keeps the bundle pending.
var (
	ErrCredentials = errors.New("credentials refused")
	ErrNoBucket    = errors.New("no such bucket")
	ErrTLS         = errors.New("tls failure")
	ErrUnreachable = errors.New("store unreachable")
	ErrUnavailable = errors.New("store unavailable")
	ErrVerify      = errors.New("uploaded object does not match the bundle")
)
