// Package schema holds the JSON Schemas (draft 2020-12) of every JSON
// document snapdiag writes: the report of analyze --format json, the bundle's
// manifest and JSON members, and watch's JSON log lines. They are embedded
// in the binary, so snapdiag schema NAME prints the one that matches the
// build, and pipelines validate against it with any draft 2020-12
// validator.
//
// The formats grow only additively, and the schemas say so: no object
// forbids keys it does not name, and a list that later versions may extend
// (finding ids, recommendation actions, check kinds) is written as anyOf an
// enum of the values this build writes and a pattern for values to come. A
// reader validating with an older schema therefore keeps accepting newer
// documents. Closed lists (severities, collector statuses, TCP states) are
// plain enums: a new value there would be a new format version. snapdiag's
// own tests validate against a strict reading of the same files, where every
// object's unnamed keys are refused and every open list is its enum alone,
// so a field or value the code writes but the schema lacks fails the tests.
package schema

import (
	"embed"
	"fmt"
	"path"
	"slices"
	"strings"
)

//go:embed *.schema.json
var files embed.FS

// Names of the schemas, as snapdiag schema NAME takes them.
const (
	Report        = "report"
	Manifest      = "manifest"
	Listeners     = "listeners"
	SampleTime    = "sample-time"
	SocketSummary = "socket-summary"
	Socket        = "socket"
	Processes     = "processes"
	WatchLog      = "watch-log"
	Selftest      = "selftest"
	Pending       = "pending"
	Fleet         = "fleet"
	Diff          = "diff"
)

// Doc is one schema: its name and what it describes.
type Doc struct {
	Name string
	// Describes says which output the schema is for, in a few words.
	Describes string
	// Lines is true when the output holds one document per line (JSON
	// Lines): each line is validated on its own.
	Lines bool
}

// Docs lists every schema, the report and the manifest first.
func Docs() []Doc {
	return []Doc{
		{Report, "analyze --format json, one report per line", true},
		{Manifest, pathManifest, false},
		{Listeners, dirSamples + "/NNN/" + sampleListeners, false},
		{SampleTime, dirSamples + "/NNN/" + sampleTime, false},
		{SocketSummary, pathSocketsSummary, false},
		{Socket, pathSocketsTCP + ", one socket per line", true},
		{Processes, pathProcesses, false},
		{WatchLog, "watch --log-format json, one event per line", true},
		{Selftest, "selftest --format json", false},
		{Pending, "BUNDLE.pending, a bundle not yet uploaded", false},
		{Fleet, "fleet --format json", false},
		{Diff, "diff --format json", false},
	}
}

// Names lists the schema names in the order of Docs.
func Names() []string {
	var out []string
	for _, d := range Docs() {
		out = append(out, d.Name)
	}
	return out
}

// Get returns the schema called name, as stored in the repository.
func Get(name string) ([]byte, error) {
	if !slices.Contains(Names(), name) {
		return nil, fmt.Errorf("no schema %q (want one of %s)", name, strings.Join(Names(), ", "))
	}
	data, err := files.ReadFile(name + ".schema.json")
	if err != nil {
		return nil, fmt.Errorf("read schema %s: %w", name, err)
	}
	return data, nil
}

// ID is the $id of the schema called name: the address of its file in the
// repository.
func ID(name string) string {
	return "https://github.com/snapdiag/snapdiag/raw/main/schema/" + name + ".schema.json"
}

// The member paths of package bundle (PathManifest, DirSamples, ...),
// spelt out: bundle's own tests import the test helpers that validate
// bundles with this package, so it cannot import bundle. TestForMember
// holds them to bundle's constants.
const (
	pathManifest       = "manifest.json"
	pathSocketsSummary = "sockets/summary.json"
	pathSocketsTCP     = "sockets/tcp.jsonl"
	pathProcesses      = "processes.json"
	dirSamples         = "samples"
	sampleListeners    = "listeners.json"
	sampleTime         = "time"
)

// ForMember returns the schema of the bundle member at path (a member name
// as bundle.Open lists it), and false for members that are not JSON
// written by snapdiag (raw kernel files, the packet sample).
func ForMember(name string) (Doc, bool) {
	var want string
	switch {
	case name == pathManifest:
		want = Manifest
	case name == pathSocketsSummary:
		want = SocketSummary
	case name == pathSocketsTCP:
		want = Socket
	case name == pathProcesses:
		want = Processes
	case path.Dir(path.Dir(name)) == dirSamples && path.Base(name) == sampleListeners:
		want = Listeners
	case path.Dir(path.Dir(name)) == dirSamples && path.Base(name) == sampleTime:
		want = SampleTime
	default:
		return Doc{}, false
	}
	for _, d := range Docs() {
		if d.Name == want {
			return d, true
		}
	}
	return Doc{}, false
}
