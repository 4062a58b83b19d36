package main

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"

	"github.com/snapdiag/snapdiag/internal/testutil"
)

// manHeader is a page's .TH line.
type manHeader struct {
	Title, Section, Date, Source, Manual string
}

// manPage is what a test reads back from a generated page's roff.
type manPage struct {
	Header   manHeader
	Sections []string // the .SH names, in order
	Name     string   // the NAME section's line
}

// parseMan reads the .TH line, the section names and the NAME line of a man
// page's roff source.
func parseMan(t *testing.T, path string) manPage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var p manPage
	var section string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ".TH "):
			fields := roffArgs(strings.TrimPrefix(line, ".TH "))
			for len(fields) < 5 {
				fields = append(fields, "")
			}
			p.Header = manHeader{fields[0], fields[1], fields[2], fields[3], fields[4]}
		case strings.HasPrefix(line, ".SH "):
			section = strings.Trim(strings.TrimPrefix(line, ".SH "), `"`)
			p.Sections = append(p.Sections, section)
		case section == "NAME" && p.Name == "" && line != "" && !strings.HasPrefix(line, "."):
			p.Name = line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return p
}

// roffArgs splits a roff request's arguments, double-quoted or not.
func roffArgs(s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return append(out, s[1:])
			}
			out = append(out, s[1:1+end])
			s = s[2+end:]
			continue
		}
		word, rest, _ := strings.Cut(s, " ")
		out = append(out, word)
		s = rest
	}
	return out
}

// visibleCommands is every command that gets a man page: the visible tree,
// with cobra's completion command, as `snapdiag --help` lists it.
func visibleCommands() []*cobra.Command {
	root := newRootCmd(io.Discard, io.Discard)
	root.InitDefaultCompletionCmd()
	var out []*cobra.Command
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		out = append(out, c)
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
				visit(sub)
			}
		}
	}
	visit(root)
	return out
}

func manFile(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
}

// snapdiagManGen runs a snapdiag built with -tags mangen, the one that has
// the man page generator (deploy/stage.sh builds the same), with env added.
func snapdiagManGen(t *testing.T, env []string, args ...string) testutil.Result {
	t.Helper()
	return testutil.Run(t, runLimit, "", env, append([]string{testutil.SnapdiagTags(t, "mangen")}, args...)...)
}

// genMan runs `snapdiag gen man` into a new directory with env added.
func genMan(t *testing.T, env ...string) string {
	t.Helper()
	dir := t.TempDir()
	if r := snapdiagManGen(t, env, "gen", "man", dir); r.Code != exitOK {
		t.Fatalf("snapdiag gen man: exit %d\n%s", r.Code, r.Stderr)
	}
	return dir
}

// 2026-05-31T23:00:00Z: already June east of UTC+1.
const manEpoch = "1780268400"

// TestManPages checks that `snapdiag gen man` writes one page per visible
// command, each with the header a package needs, the sections its help
// text promises (exit status, files) and nothing else in the directory.
func TestManPages(t *testing.T) {
	dir := genMan(t, "SOURCE_DATE_EPOCH="+manEpoch, "TZ=UTC")
	var want, got []string
	for _, c := range visibleCommands() {
		want = append(want, manFile(c))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("man pages (-want +got):\n%s", diff)
	}

	// Sections a reader of these commands' pages looks for.
	wantSections := map[string][]string{
		"snapdiag":         {"EXIT STATUS", "FILES", "ENVIRONMENT"},
		"snapdiag capture": {"EXIT STATUS", "FILES"},
		"snapdiag analyze": {"EXIT STATUS", "ENVIRONMENT"},
		"snapdiag diff":    {"EXIT STATUS", "ENVIRONMENT"},
		"snapdiag watch":   {"EXIT STATUS", "FILES"},
		"snapdiag tui":     {"EXIT STATUS"},
		"snapdiag redact":  {"EXIT STATUS", "FILES"},
	}
	for _, c := range visibleCommands() {
		p := parseMan(t, filepath.Join(dir, manFile(c)))
		name := strings.ReplaceAll(c.CommandPath(), " ", "-")
		wantHeader := manHeader{strings.ToUpper(name), "1", "May 2026", p.Header.Source, "snapdiag Manual"}
		if diff := cmp.Diff(wantHeader, p.Header); diff != "" || !strings.HasPrefix(p.Header.Source, "snapdiag ") {
			t.Errorf("%s: .TH (-want +got):\n%s(source %q)", manFile(c), diff, p.Header.Source)
		}
		if p.Name != name+` \- `+c.Short && p.Name != name+" - "+c.Short {
			t.Errorf("%s: NAME line %q, want %q", manFile(c), p.Name, name+" - "+c.Short)
		}
		for _, s := range wantSections[c.CommandPath()] {
			if !slices.Contains(p.Sections, s) {
				t.Errorf("%s: no %s section", manFile(c), s)
			}
		}
		// Every section the help text starts, in its order, between the
		// fixed ones.
		sections := []string{"NAME", "SYNOPSIS", "DESCRIPTION"}
		for _, line := range strings.Split(c.Long, "\n") {
			if s := manSection(line); s != "" {
				sections = append(sections, s)
			}
		}
		sections = append(sections, "OPTIONS")
		if c.Example != "" {
			sections = append(sections, "EXAMPLE")
		}
		sections = append(sections, "SEE ALSO")
		if diff := cmp.Diff(sections, p.Sections); diff != "" {
			t.Errorf("%s: sections (-want +got):\n%s", manFile(c), diff)
		}
	}
}

// TestManPagesReproducible: the same SOURCE_DATE_EPOCH gives the same bytes
// whatever the build machine's time zone and the builder's home directory
// (--key-file's default lives there).
func TestManPagesReproducible(t *testing.T) {
	a := genMan(t, "SOURCE_DATE_EPOCH="+manEpoch, "TZ=UTC", "XDG_CONFIG_HOME=/home/alice/.config")
	b := genMan(t, "SOURCE_DATE_EPOCH="+manEpoch, "TZ=Pacific/Kiritimati", "XDG_CONFIG_HOME=/root/.config")
	for _, c := range visibleCommands() {
		pa, err := os.ReadFile(filepath.Join(a, manFile(c)))
		if err != nil {
			t.Fatal(err)
		}
		pb, err := os.ReadFile(filepath.Join(b, manFile(c)))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(pa), string(pb)); diff != "" {
			t.Errorf("%s differs between builds (-UTC, alice +Kiritimati, root):\n%s", manFile(c), diff)
		}
	}
	if r := snapdiagManGen(t, []string{"SOURCE_DATE_EPOCH=yesterday"}, "gen", "man", t.TempDir()); r.Code != exitUsage {
		t.Errorf("SOURCE_DATE_EPOCH=yesterday: exit %d, want %d (usage)", r.Code, exitUsage)
	}
}

// TestShippedBinaryHasNoManGenerator: the binary built without tags, the
// one every capture starts, links none of the man page generator's modules
// (their package initialisation would run on every start), and its
// `gen man` writes nothing and fails.
func TestShippedBinaryHasNoManGenerator(t *testing.T) {
	bin := testutil.Snapdiag(t)
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	generator := []string{"github.com/cpuguy83/go-md2man/v2", "github.com/russross/blackfriday/v2"}
	for _, m := range bi.Deps {
		if slices.Contains(generator, m.Path) {
			t.Errorf("%s links %s %s, a module only the man page generator needs", bin, m.Path, m.Version)
		}
	}
	dir := t.TempDir()
	if r := snapdiag(t, nil, "gen", "man", dir); r.Code != exitError {
		t.Errorf("gen man without the mangen tag: exit %d, want %d\n%s", r.Code, exitError, r.Stderr)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("gen man without the mangen tag wrote %d files (%v)", len(entries), err)
	}
}

// TestManPagesRender opens every page by its name with man(1), from a man1
// directory as a package installs them (`man snapdiag-capture`): no groff
// warnings, and the DESCRIPTION carries the command's whole help text, word
// for word, with nothing read as markup ("* OK", "\x1b") or lost.
func TestManPagesRender(t *testing.T) {
	manBin, err := exec.LookPath("man")
	if err != nil {
		t.Skip("man is not installed; TestManPages checked the roff")
	}
	manPath := t.TempDir()
	dir := filepath.Join(manPath, "man1")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := snapdiagManGen(t, nil, "gen", "man", dir); r.Code != exitOK {
		t.Fatalf("snapdiag gen man: exit %d\n%s", r.Code, r.Stderr)
	}
	for _, c := range visibleCommands() {
		name := strings.TrimSuffix(manFile(c), ".1")
		cmd := exec.Command(manBin, "--warnings", "--nh", "--nj", "-M", manPath, name)
		cmd.Env = append(os.Environ(), "LC_ALL=C", "MANWIDTH=10000", "MANPAGER=cat", "PAGER=cat")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man %s: %v\n%s", name, err, stderr.String())
			continue
		}
		if diff := cmp.Diff(longWords(c), renderedDescription(stdout.String())); diff != "" {
			t.Errorf("%s: DESCRIPTION to OPTIONS (-help text +page):\n%s", manFile(c), diff)
		}
	}
}

// longWords is a command's Long text (Short when it has none) as words,
// with each man section line read as its section's name.
func longWords(c *cobra.Command) []string {
	long := c.Long
	if long == "" {
		long = c.Short
	}
	var words []string
	for _, line := range strings.Split(long, "\n") {
		if s := manSection(line); s != "" {
			line = s
		}
		words = append(words, strings.Fields(line)...)
	}
	return words
}

// renderedDescription is the words of a rendered page from the DESCRIPTION
// heading (excluded) to the OPTIONS heading.
func renderedDescription(page string) []string {
	var words []string
	in := false
	for _, line := range strings.Split(page, "\n") {
		switch strings.TrimSpace(line) {
		case "DESCRIPTION":
			in = true
			continue
		case "OPTIONS":
			return words
		}
		if in {
			words = append(words, strings.Fields(line)...)
		}
	}
	return words
}
