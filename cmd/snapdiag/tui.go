package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	tea "charm.land/bubbletea/v2"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/tui"
)

// bundleDirs are where `snapdiag tui` looks for the newest bundle when none
// is named: capture's default directory, then the current one (the same
// places capture writes to; collectors.DefaultDir is not used because it
// creates the directory).
func bundleDirs() []string { return []string{"/var/lib/snapdiag", "."} }

func newTUICmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tui [BUNDLE]",
		Short: "Browse a bundle's findings and evidence in the terminal",
		Long: `tui opens a bundle (a .tar.zst, or a directory it was unpacked into) without
extracting it, and shows the findings first: Enter opens one, and every piece of
evidence leads to the listener, counter, sysctl, socket, packet or file it came
from. With no BUNDLE it opens the newest bundle in /var/lib/snapdiag, else in
the current directory. NO_COLOR turns colours off.

A whole-node bundle (capture --all-netns) has a namespaces view (key 9): every
namespace, the worst first; Enter focuses all views on one namespace, esc in
that view shows the whole node again.

Exit status:
  0  the browser was quit
  1  the bundle could not be read, or stdin or stdout is not a terminal
  2  usage error, or no BUNDLE named and none found`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
			} else {
				p, err := newestBundle(bundleDirs())
				if err != nil {
					return err
				}
				path = p
			}
			return runTUI(path)
		},
	}
}

// newestBundle is the newest snapdiag-*.tar.zst in the first of dirs that
// holds one.
func newestBundle(dirs []string) (string, error) {
	for _, d := range dirs {
		matches, _ := filepath.Glob(filepath.Join(d, "snapdiag-*.tar.zst"))
		type cand struct {
			path string
			mod  int64
		}
		var cs []cand
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() {
				cs = append(cs, cand{m, fi.ModTime().UnixNano()})
			}
		}
		if len(cs) == 0 {
			continue
		}
		// Newest first; the name's UTC timestamp breaks ties.
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].mod != cs[j].mod {
				return cs[i].mod > cs[j].mod
			}
			return cs[i].path > cs[j].path
		})
		return cs[0].path, nil
	}
	return "", usageError{fmt.Errorf("no bundle named and none found in %v", dirs)}
}

// openForTUI opens a bundle file, or an unpacked bundle's directory.
func openForTUI(path string) (fs.FS, func() error, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		return bundle.DirFS(path), func() error { return nil }, nil
	}
	// Partial: a damaged bundle is still worth browsing; the manifest view
	// says what was lost.
	b, err := bundle.Open(path, bundle.Limits{Partial: true})
	if err != nil {
		return nil, nil, err
	}
	return b, b.Close, nil
}

func runTUI(path string) error {
	if !isatty.IsTerminal(os.Stdout.Fd()) || !isatty.IsTerminal(os.Stdin.Fd()) {
		return hintError{errors.New("snapdiag tui needs a terminal"), "use 'snapdiag analyze' for a report on a pipe"}
	}
	fsys, closeFS, err := openForTUI(path)
	if err != nil {
		return err
	}
	defer closeFS()
	snap, err := analyze.Load(fsys)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	rep := analyze.Analyze(snap, path, analyze.Rules())
	// The TUI shows the snapshot just analysed instead of parsing the
	// bundle again; it reads fsys only for what it opens on demand.
	// The one terminal query snapdiag makes, the background colour, is the
	// TUI's own, sent once its program owns the terminal; nothing waits for
	// the answer.
	m := tui.New(rep, snap, fsys, tui.Options{
		Clipboard: tui.OSC52Clipboard(os.Stdout, os.Getenv),
	})
	_, err = tea.NewProgram(m).Run()
	return err
}
