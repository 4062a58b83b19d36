package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/snapdiag/snapdiag/ship"
	"github.com/snapdiag/snapdiag/watch"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultUploadTimeout bounds one bundle's upload: the deadline push and a
// watch give the store before the bundle is left pending.
const defaultUploadTimeout = 10 * time.Minute

// captureUploadTimeout is capture's default --upload-timeout. A capture is
// often part of a restart (systemd's ExecStopPost=, a watchdog's script):
// it must not hold the restart while a store is slow or down. What is not
// in by then stays pending for snapdiag push --pending (the
// snapdiag-push@.timer) or a watch --upload on the same directory.
const captureUploadTimeout = 2 * time.Second

// minPartSize is S3's smallest multipart part.
const minPartSize = 5 << 20

// storeFlags say how to reach the store: the endpoint and multipart part
// size. Credentials are never flags (they would show in ps and in shell
// history): AWS_* variables or the shared credentials file.
type storeFlags struct {
	endpoint      string
	partSize      watch.ByteSize
	uploadTimeout time.Duration
}

// register adds the flags, with timeout as --upload-timeout's default.
func (s *storeFlags) register(fl *pflag.FlagSet, timeout time.Duration) {
	s.partSize = ship.DefaultPartSize
	fl.StringVar(&s.endpoint, "endpoint", "", "S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS S3)")
	fl.Var(&s.partSize, "part-size", "bundles above this size go in multipart uploads of parts this size (at least 5MiB)")
	fl.DurationVar(&s.uploadTimeout, "upload-timeout", timeout, "time limit of one bundle's upload; past it the bundle stays pending")
}

func (s storeFlags) validate() error {
	switch {
	case s.partSize < minPartSize:
		return usageError{fmt.Errorf("--part-size must be at least 5MiB, not %s", s.partSize.String())}
	case s.uploadTimeout <= 0:
		return usageError{errors.New("--upload-timeout must be positive")}
	}
	return nil
}

// pusher opens the store of target (a URL as --to or --upload take it).
func (s storeFlags) pusher(target string) (*ship.Pusher, error) {
	t, err := ship.ParseTarget(target)
	if err != nil {
		return nil, usageError{err}
	}
	p, err := ship.Open(t, ship.S3Options{Endpoint: s.endpoint, PartSize: int64(s.partSize)})
	if err != nil {
		return nil, usageError{err}
	}
	p.Timeout = s.uploadTimeout
	return p, nil
}

type pushFlags struct {
	storeFlags
	to      string
	pending string
}

func newPushCmd() *cobra.Command {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "push [--to URL] BUNDLE... | push --pending DIR",
		Short: "Send bundles to an S3-compatible store or a shared directory",
		Long: `Push sends bundles to --to: s3://BUCKET/PREFIX (AWS S3, MinIO, Ceph RGW,
SeaweedFS, R2, GCS's S3 API) or file:///DIR (a shared mount). Each bundle
becomes the object PREFIX/HOSTNAME/BUNDLE_NAME, HOSTNAME from the bundle's
manifest, so a second push of the same bundle is the same object and two
hosts never collide.

The bundle's SHA-256 travels with the object (the x-amz-meta-snapdiag-sha256
metadata and the x-amz-checksum-sha256 checksum; for a file target, the
sidecar DIR/KEY.sha256 in sha256sum's format) and is read back from the store
after the upload. An object already there with the same SHA-256 is not sent
again. Bundles above --part-size go in a multipart upload, read part by
part: memory stays bounded whatever the size, and no object appears under
the key until every part is in.

A bundle that could not be sent is kept and marked pending: the sidecar
BUNDLE.pending beside it (JSON, snapdiag.pending/v1) names the target, the
key, the attempts and the last error. --pending DIR sends every pending
bundle in DIR to the target its sidecar names (--to, when given, must be
that target), which is what snapdiag-push.timer runs. capture --upload and
watch --upload mark their bundles the same way, inside the commit: the
sidecar is written just before the bundle appears, so a kill never leaves
the bundle unmarked; a sidecar whose bundle never appeared is removed by
--pending (when no capture holds DIR's lock; it never waits for one).

Credentials, the first of these that has a key:
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
  AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials)
  AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN (a pod's role; STS at
    AWS_ENDPOINT_URL_STS or the region's)
  the ECS task's role, else the EC2 instance's (IMDSv2;
    AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_DISABLED=true)
Each request for a role's credentials is bounded to 2s. An AWS SSO profile
signs in with the token aws sso login cached; one that gives no key fails
the upload in one line (aws sso login, or aws configure export-credentials).
Region and endpoint:
  AWS_REGION, AWS_DEFAULT_REGION, AWS_CONFIG_FILE (~/.aws/config: region)
  --endpoint, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL
Addressing is path-style for every endpoint but AWS's, GCS's and Aliyun's.
The secret is never printed, logged or written anywhere; errors name the
access key id.

Exit status:
  0  every bundle is in the store (uploaded, or already there)
  1  at least one bundle could not be sent (each kept, pending, one line
     on stderr says why)
  2  usage error`,
		Example: `  AWS_ENDPOINT_URL=http://minio.internal:9000 snapdiag push --to s3://bundles/prod /var/lib/snapdiag/*.tar.zst
  snapdiag push --pending /var/lib/snapdiag
  snapdiag push --to file:///mnt/fleet/bundles snapdiag-web1-20260101T030405Z.tar.zst`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(cmd.Context(), f, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	f.register(fl, defaultUploadTimeout)
	fl.StringVar(&f.to, "to", "", "target: s3://BUCKET/PREFIX or file:///DIR")
	fl.StringVar(&f.pending, "pending", "", "send every bundle marked pending in this directory")
	return cmd
}

func runPush(ctx context.Context, f pushFlags, args []string, stdout, stderr io.Writer) error {
	if err := f.validate(); err != nil {
		return err
	}
	switch {
	case f.pending == "" && len(args) == 0:
		return usageError{errors.New("push needs bundles, or --pending DIR")}
	case f.pending != "" && len(args) > 0:
		return usageError{errors.New("give bundles or --pending DIR, not both")}
	case f.pending == "" && f.to == "":
		return usageError{errors.New("push needs --to s3://BUCKET/PREFIX or file:///DIR")}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := stopOnSignal(ctx)
	defer stop()
	if f.pending != "" {
		return pushPending(ctx, f, stdout, stderr)
	}
	p, err := f.pusher(f.to)
	if err != nil {
		return err
	}
	return pushEach(args, stderr, func(path string) error {
		host, err := ship.BundleHost(path)
		if err != nil {
			return err
		}
		key, err := p.KeyFor(host, path)
		if err != nil {
			return err
		}
		return report(ctx, p, path, key, stdout, stderr)
	})
}

// pushEach calls push on every path, printing each error not yet printed,
// and exits 1 when any failed.
func pushEach(paths []string, stderr io.Writer, push func(path string) error) error {
	failed := 0
	for _, path := range paths {
		if err := push(path); err != nil {
			failed++
			if !errors.Is(err, errReported) {
				fmt.Fprintf(stderr, "snapdiag: push %s: %v\n", path, err)
			}
		}
	}
	if failed > 0 {
		return exitStatus(exitError)
	}
	return nil
}

// errReported is a push failure already printed.
var errReported = errors.New("reported")

// report pushes one bundle and prints what happened: on stdout the
// outcome and the object's URL, on stderr one line for a failure.
func report(ctx context.Context, p *ship.Pusher, path, key string, stdout, stderr io.Writer) error {
	res, err := p.Push(ctx, path, key)
	if err != nil {
		fmt.Fprintf(stderr, "snapdiag: push %s: %v (kept, pending: %s)\n", filepath.Base(path), err, ship.PendingPath(path))
		return errReported
	}
	fmt.Fprintf(stdout, "%s %s/%s\n", res.Outcome, p.Target, lastSegments(key))
	return nil
}

// lastSegments is the key below the target's prefix: the target URL
// already carries the prefix.
func lastSegments(key string) string {
	dir, name := filepath.Split(key)
	return filepath.Join(filepath.Base(dir), name)
}

// pushPending sends the pending bundles of f.pending, one store per target
// the sidecars name.
func pushPending(ctx context.Context, f pushFlags, stdout, stderr io.Writer) error {
	removeOrphans(ctx, f.pending, stderr)
	paths, err := ship.ListPending(f.pending)
	if err != nil {
		return err
	}
	only := ""
	if f.to != "" {
		t, err := ship.ParseTarget(f.to)
		if err != nil {
			return usageError{err}
		}
		only = t.String()
	}
	pushers := map[string]*ship.Pusher{}
	return pushEach(paths, stderr, func(path string) error {
		pd, err := ship.ReadPending(path)
		if err != nil {
			return err
		}
		if only != "" && pd.Target != only {
			return nil // pending for another store
		}
		p := pushers[pd.Target]
		if p == nil {
			if p, err = f.pusher(pd.Target); err != nil {
				return err
			}
			pushers[pd.Target] = p
		}
		return report(ctx, p, path, pd.Key, stdout, stderr)
	})
}

// uploadFlags are capture's and watch's --upload and how to reach its store.
type uploadFlags struct {
	storeFlags
	upload string
}

func (u *uploadFlags) register(fl *pflag.FlagSet, timeout time.Duration) {
	u.storeFlags.register(fl, timeout)
	fl.StringVar(&u.upload, "upload", "", "after each bundle is written, send it to s3://BUCKET/PREFIX or file:///DIR (see snapdiag push); a bundle not sent stays in --out, pending")
}

// validate checks the flags and opens the store, so that a bad --upload is
// a usage error before any capture, not a surprise after one. The pusher
// is nil without --upload.
func (u uploadFlags) validate() (*ship.Pusher, error) {
	if u.upload == "" {
		return nil, nil
	}
	if err := u.storeFlags.validate(); err != nil {
		return nil, err
	}
	return u.pusher(u.upload)
}

// uploadAfter sends a bundle just written, which its commit marked
// pending (mark) so that a failure, a kill or a reboot leaves it for the
// next run; a mark the commit could not write is tried once more first.
// The outcome goes to out; a failure is one line on stderr, and does not
// undo the capture.
func uploadAfter(ctx context.Context, p *ship.Pusher, path string, mark *ship.CommitMark, out, stderr io.Writer) error {
	key, err := mark.Key, mark.Err
	if err != nil {
		fmt.Fprintf(stderr, "snapdiag: upload %s: mark pending: %v\n", filepath.Base(path), err)
		host, herr := ship.BundleHost(path)
		if key, err = p.KeyFor(host, path); herr != nil {
			err = herr
		}
		if err == nil {
			if merr := ship.MarkPending(path, p.Target, key, time.Now()); merr != nil {
				// Send it anyway: a bundle that cannot be marked is the
				// one most in need of leaving a failing disk.
				fmt.Fprintf(stderr, "snapdiag: upload %s: %v\n", filepath.Base(path), merr)
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "snapdiag: upload %s: %v\n", filepath.Base(path), err)
			return err
		}
	}
	return report(ctx, p, path, key, out, stderr)
}

// removeOrphans removes, under dir's capture lock, the pending sidecars
// of bundles never committed (ship.RemoveOrphanSidecars: a capture killed
// inside its commit), before push --pending lists what is pending. A held
// lock skips it without waiting: its holder is a capture that may be
// between its sidecar and its bundle, and the next run looks again. Any
// other failure to take the lock (a read-only or forbidden --out) is said.
func removeOrphans(ctx context.Context, dir string, stderr io.Writer) {
	_, err := watch.RemoveOrphanSidecars(ctx, dir)
	if err != nil {
		_, hint := lockHint(dir, err)
		fmt.Fprintf(stderr, "snapdiag: push: sidecars of bundles never committed not checked: %v (%s)\n", err, hint)
	}
}
