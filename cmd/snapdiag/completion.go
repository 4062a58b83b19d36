package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapdiag/snapdiag/schema"
	"github.com/snapdiag/snapdiag/selftest"
)

// bundleExt is the bundle file name extension the shells complete; they
// offer directories too, which is how an unpacked bundle is named.
const bundleExt = "tar.zst"

// Values offered for the flags that take one of a few words, each with the
// description shells that show one (zsh, fish) print beside it. The
// commands' own checks accept every one of them (a test runs each).
var (
	reportFormats = []cobra.Completion{
		cobra.CompletionWithDesc("text", "the report for a person (colour on a terminal)"),
		cobra.CompletionWithDesc("json", "snapdiag.report/v1, one object per bundle"),
		cobra.CompletionWithDesc("markdown", "for a ticket or a chat"),
	}
	severities = []cobra.Completion{
		cobra.CompletionWithDesc("info", "every finding"),
		cobra.CompletionWithDesc("warning", "warnings and critical findings"),
		cobra.CompletionWithDesc("critical", "critical findings only"),
	}
	logFormats = []cobra.Completion{
		cobra.CompletionWithDesc("text", "key=value lines"),
		cobra.CompletionWithDesc("json", "one JSON object per line"),
	}
	logLevels  = []cobra.Completion{"debug", "info", "warn", "error"}
	priorities = []cobra.Completion{
		cobra.CompletionWithDesc("low", "nice 10 and the last best-effort disk level"),
		cobra.CompletionWithDesc("normal", "the priority snapdiag was started with"),
	}
)

// flagCompletion is how the shell completes one string flag of one command.
type flagCompletion struct {
	cmd, flag string
	complete  cobra.CompletionFunc
}

// flagCompletions lists every visible string flag of every command (a test
// fails when one is missing): words, directories, files, or nothing for free
// text. Flags of other types (numbers, durations, sizes) complete nothing.
var flagCompletions = []flagCompletion{
	{"analyze", "format", oneOf(reportFormats)},
	{"analyze", "min-severity", oneOf(severities)},
	{"capture", "priority", oneOf(priorities)},
	{"capture", "out", completeDirs},
	{"capture", "key-file", completeFiles},
	{"capture", "reason", cobra.NoFileCompletions},
	{"capture", "netns", completeNetns},
	{"capture", "container", completeContainers},
	{"watch", "log-format", oneOf(logFormats)},
	{"watch", "log-level", oneOf(logLevels)},
	{"watch", "out", completeDirs},
	{"watch", "check", cobra.NoFileCompletions},
	{"watch", "expect", cobra.NoFileCompletions},
	{"watch", "then", cobra.NoFileCompletions},
	{"watch", "reason", cobra.NoFileCompletions},
	{"watch", "metrics", cobra.NoFileCompletions},
	{"watch", "webhook", cobra.NoFileCompletions},
	{"watch", "webhook-match", cobra.NoFileCompletions},
	{"watch", "webhook-token-file", completeFiles},

	{"watch", "netns", completeNetns},
	{"watch", "container", completeContainers},
	{"top", "out", completeDirs},
	{"top", "netns", completeNetns},
	{"top", "container", completeContainers},
	{"redact", "key-file", completeFiles},
	{"capture", "upload", cobra.NoFileCompletions},
	{"capture", "endpoint", cobra.NoFileCompletions},
	{"watch", "upload", cobra.NoFileCompletions},
	{"watch", "endpoint", cobra.NoFileCompletions},
	{"push", "to", cobra.NoFileCompletions},
	{"push", "endpoint", cobra.NoFileCompletions},
	{"push", "pending", completeDirs},
	{"selftest", "format", oneOf(selftestFormats)},
	{"diff", "format", oneOf(diffFormats)},
	{"fleet", "format", oneOf(reportFormats)},
	{"fleet", "min-severity", oneOf(severities)},
	{"fleet", "since", cobra.NoFileCompletions},
	{"fleet", "until", cobra.NoFileCompletions},
	{"fleet", "host", cobra.NoFileCompletions},
	{"fleet", "endpoint", cobra.NoFileCompletions},
	{"fleet", "cache-dir", completeDirs},
	{"fleet", "tz", completeZones},
	{"selftest", "incident", oneOf(selftest.Names())},
}

// selftestFormats are selftest's --format values.
var selftestFormats = []cobra.Completion{
	cobra.CompletionWithDesc("text", "the table for a person"),
	cobra.CompletionWithDesc("json", "snapdiag.selftest/v1"),
}

// argCompletions complete each command's arguments.
var argCompletions = map[string]cobra.CompletionFunc{
	"analyze":  completeBundles(-1),
	"tui":      completeBundles(1),
	"diff":     completeBundles(2),
	"push":     completeBundles(-1),
	"fleet":    completeDirs,
	"top":      cobra.NoFileCompletions,
	"redact":   completeRedactArgs,
	"capture":  cobra.NoFileCompletions,
	"watch":    cobra.NoFileCompletions,
	"version":  cobra.NoFileCompletions,
	"selftest": cobra.NoFileCompletions,
	"schema":   completeSchemaNames,
}

// completeSchemaNames offers the names snapdiag schema prints, for its one
// argument.
func completeSchemaNames(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return oneOf(schema.Names())(cmd, args, toComplete)
}

// registerCompletions attaches flagCompletions and argCompletions to root's
// commands, and "nothing" to every flag that takes a number, a duration or a
// size. A table entry naming a command or flag that does not exist is a
// programming error, and every test that builds the commands panics on it.
func registerCompletions(root *cobra.Command) {
	byName := map[string]*cobra.Command{}
	for _, c := range root.Commands() {
		byName[c.Name()] = c
	}
	for _, fc := range flagCompletions {
		c := byName[fc.cmd]
		if c == nil {
			panic(fmt.Sprintf("flagCompletions: no command %q", fc.cmd))
		}
		if err := c.RegisterFlagCompletionFunc(fc.flag, fc.complete); err != nil {
			panic(fmt.Sprintf("flagCompletions: %s --%s: %v", fc.cmd, fc.flag, err))
		}
	}
	for name, complete := range argCompletions {
		c := byName[name]
		if c == nil {
			panic(fmt.Sprintf("argCompletions: no command %q", name))
		}
		c.ValidArgsFunction = complete
	}
	for _, c := range root.Commands() {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if takesWord(f) {
				return
			}
			if _, ok := c.GetFlagCompletionFunc(f.Name); !ok && f.NoOptDefVal == "" {
				// Cannot fail: the flag exists and has no function yet.
				_ = c.RegisterFlagCompletionFunc(f.Name, cobra.NoFileCompletions)
			}
		})
	}
}

// takesWord reports whether f's value is free-form text (a string, or a
// list of strings), which flagCompletions must say how to complete.
func takesWord(f *pflag.Flag) bool {
	switch f.Value.Type() {
	case "string", "stringArray", "stringSlice":
		return true
	}
	return false
}

// oneOf completes a flag with the values that start with what is typed.
func oneOf(values []cobra.Completion) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, v := range values {
			word, _, _ := strings.Cut(v, "\t")
			if strings.HasPrefix(word, toComplete) {
				out = append(out, v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func completeDirs(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}

func completeFiles(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveDefault
}

// completeBundles completes bundle arguments, up to max of them (max < 0:
// any number): .tar.zst files, and directories (an unpacked bundle, or the
// way to one).
func completeBundles(max int) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if max >= 0 && len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return []cobra.Completion{bundleExt}, cobra.ShellCompDirectiveFilterFileExt
	}
}

// completeRedactArgs completes redact IN OUT: IN is a bundle, OUT a new
// file or a directory.
func completeRedactArgs(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return []cobra.Completion{bundleExt}, cobra.ShellCompDirectiveFilterFileExt
	case 1:
		return nil, cobra.ShellCompDirectiveDefault
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}
