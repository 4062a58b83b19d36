package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/snapdiag/snapdiag/redact"
	"github.com/spf13/cobra"
)

// unredactedPrefix hides a capture's bundle while it is redacted. It starts
// with the bundle Writer's temporary prefix, so if snapdiag dies before the
// redaction ends, the next capture's stale-file cleanup removes it and
// nothing takes it for a bundle to share.
const unredactedPrefix = ".snapdiag-tmp-unredacted-"

// defaultKeyFile is where the redaction key lives unless --key-file says
// otherwise: the user's configuration directory, never the bundle directory,
// which is what gets copied around.
func defaultKeyFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "snapdiag", "redact.key")
}

func newRedactCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "redact IN OUT",
		Short: "Write a copy of a bundle with addresses and host names pseudonymised",
		Long: `Redact writes a copy of the bundle IN that can be shared: every IPv4 and IPv6
address, MAC address and the host's name is replaced, in every member (the
kernel log, the socket table, /proc/net files, the packet sample), by a
pseudonym derived from a secret key. Subnets stay recognisable (the same /24
stays the same /24, private addresses stay private), so analyze finds the
same findings in the copy. Packet payloads are cut after the transport header.

The key (--key-file) is created when missing and must stay with you: the same
key gives the same pseudonyms in every bundle of an incident; the manifest
records only its fingerprint. OUT is a new file, or a directory where the copy
gets a name with the host's pseudonym. The path written is printed last.

A damaged IN (cut short, corrupt) is redacted as far as it can be read: the
copy says in its manifest what was lost, without IN's path, and a warning goes
to stderr. The exit code is still 0, as for capture: a redacted bundle was
written, and it is safe to share. It is 1 when no copy was written.`,
		Example: `  snapdiag redact /var/lib/snapdiag/snapdiag-imap1-20260101T101010Z.tar.zst /tmp/
  snapdiag redact --key-file ~/incident-42.key in.tar.zst out.tar.zst`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := loadRedactKey(keyFile, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			res, err := redact.New(k).File(args[0], args[1])
			switch {
			case errors.Is(err, fs.ErrExist):
				return hintError{err, "OUT must not exist: name a new file, or a directory"}
			case errors.Is(err, redact.ErrRedacted):
				return hintError{err, "share it as it is; redact the original bundle to use another key"}
			case err != nil:
				return err
			}
			if res.Damage != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "snapdiag: warning: %s is damaged (%v); the redacted copy holds only the members before the damage\n", args[0], res.Damage)
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Path)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", defaultKeyFile(), "the redaction key: a secret you keep (created, mode 0600, when missing)")
	return cmd
}

// loadRedactKey reads the key, or creates it and says so.
func loadRedactKey(path string, stderr io.Writer) (redact.Key, error) {
	if path == "" {
		return redact.Key{}, usageError{errors.New("--key-file is required: there is no configuration directory for the default key")}
	}
	k, created, err := redact.LoadOrCreateKey(path)
	if err != nil {
		return redact.Key{}, err
	}
	if created {
		fmt.Fprintf(stderr, "snapdiag: created redaction key %s (fingerprint %s); keep it to give later bundles the same pseudonyms, and never share it\n", path, k.Fingerprint())
	}
	return k, nil
}

// captureRedactor redacts a capture's bundle for capture --redact; nil when
// the capture is not redacted.
type captureRedactor struct{ key redact.Key }

// newCaptureRedactor loads the key before the capture starts, so a capture
// never ends unredacted for want of a key.
func newCaptureRedactor(on bool, keyFile string, stderr io.Writer) (*captureRedactor, error) {
	if !on {
		return nil, nil
	}
	k, err := loadRedactKey(keyFile, stderr)
	if err != nil {
		return nil, err
	}
	return &captureRedactor{key: k}, nil
}

// replace redacts the bundle at path into its directory and removes the
// unredacted one, returning the redacted bundle's path. On success no
// unredacted copy is left on disk. When redaction fails the unredacted
// bundle is put back under its name, as evidence the capture must not lose,
// and the error says where it is.
func (c *captureRedactor) replace(path string) (string, error) {
	if c == nil {
		return path, nil
	}
	dir := filepath.Dir(path)
	hidden := filepath.Join(dir, unredactedPrefix+filepath.Base(path))
	if err := os.Rename(path, hidden); err != nil {
		return "", fmt.Errorf("redact %s: %w; the UNREDACTED bundle is still at %s: do not share it", path, err, path)
	}
	res, err := redact.New(c.key).Bundle(hidden, dir, "")
	if err != nil {
		if rerr := os.Rename(hidden, path); rerr != nil {
			path = hidden
		}
		return "", fmt.Errorf("redact %s: %w; the UNREDACTED bundle was kept at %s: do not share it", path, err, path)
	}
	if err := os.Remove(hidden); err != nil {
		return "", fmt.Errorf("remove the unredacted bundle %s: %w (the redacted one is %s)", hidden, err, res.Path)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return res.Path, nil
}
