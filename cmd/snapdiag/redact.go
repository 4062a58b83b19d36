package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/collectors"
	"github.com/snapdiag/snapdiag/redact"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

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
written, and it is safe to share. It is 1 when no copy was written.

Exit status:
  0  a redacted copy was written, even of a damaged IN
  1  no copy was written
  2  usage error

Files:
  ~/.config/snapdiag/redact.key
      the default --key-file (created mode 0600 when missing; under
      $XDG_CONFIG_HOME when that is set)`,
		Example: `  snapdiag redact /var/lib/snapdiag/snapdiag-imap1-20260101T101010Z.tar.zst /tmp/
  snapdiag redact --key-file ~/incident-42.key in.tar.zst out.tar.zst`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The input first: a missing or unreadable one must not leave
			// a new key behind.
			f, _, err := bundle.OpenFile(args[0])
			if err != nil {
				return err
			}
			f.Close()
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

// captureFilter is the redaction of capture --redact, nil when the capture
// is not redacted. The key is loaded before the capture starts, so a
// capture never ends unredacted for want of a key. Members are redacted as
// they are written (redact.Redactor.Filter): nothing unredacted is ever on
// disk, even when the capture is killed.
func captureFilter(on bool, keyFile string, stderr io.Writer) (bundle.Filter, error) {
	if !on {
		return nil, nil
	}
	k, err := loadRedactKey(keyFile, stderr)
	if err != nil {
		return nil, err
	}
	var names []string
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	if h := collectors.Hostname(); h != "" && !slices.Contains(names, h) {
		// $SNAPDIAG_HOSTNAME names the bundle: pseudonymised like the rest.
		names = append(names, h)
	}
	var uts unix.Utsname
	machine := ""
	if unix.Uname(&uts) == nil {
		names = append(names, unix.ByteSliceToString(uts.Nodename[:]))
		machine = unix.ByteSliceToString(uts.Machine[:])
	}
	return redact.New(k).Filter(names, machine), nil
}
