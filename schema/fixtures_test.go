package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/internal/nodebundle"
	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/schema"
)

// recorded lists every recorded bundle of the repository: the lab fixtures
// (not the hostile ones, which are not bundles), the TUI's and the
// analyzer's test data, packed or unpacked.
func recorded(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{
		"../fixtures/*/bundle.tar.zst", "../tui/testdata/*.tar.zst",
		"../analyze/testdata/*/*.tar.zst", "../analyze/testdata/host",
	} {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, paths...)
	}
	if len(out) < 15 {
		t.Fatalf("%d recorded bundles: want the fixtures under ../fixtures, ../tui/testdata and ../analyze/testdata", len(out))
	}
	return out
}

// reportOf analyzes the bundle at path and returns the report as analyze
// --format json writes it.
func reportOf(t *testing.T, path string) []byte {
	t.Helper()
	load := analyze.LoadPath
	if !strings.HasSuffix(path, ".tar.zst") {
		load = analyze.LoadDir
	}
	s, err := load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	var b bytes.Buffer
	if err := analyze.RenderJSON(&b, analyze.Analyze(s, path, analyze.Rules())); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// diffOf is the JSON diff of the bundles at a and b.
func diffOf(t *testing.T, a, b string) []byte {
	t.Helper()
	sa, err := analyze.LoadPath(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := analyze.LoadPath(b)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := analyze.RenderDiffJSON(&out, analyze.Compare(sa, a, sb, b, analyze.Rules())); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestRecordedBundlesValidate: every JSON member of every recorded bundle,
// and the report of analyzing it, validate against their schemas.
func TestRecordedBundlesValidate(t *testing.T) {
	members, reports := 0, 0
	for _, path := range recorded(t) {
		n := 0
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			n = testutil.ValidateFS(t, os.DirFS(path))
		} else {
			n = testutil.ValidateBundle(t, path)
		}
		if n < 3 {
			t.Errorf("%s: %d JSON members validated, want the manifest and the samples' at least", path, n)
		}
		members += n
		reports += testutil.ValidateReport(t, reportOf(t, path))
	}
	t.Logf("validated %d JSON members and %d reports", members, reports)
}

// synflood is a report with findings, evidence and recommendations.
const synflood = "../fixtures/synflood-cookies-off-v4/bundle.tar.zst"

// edit decodes report, applies fix to the first finding, and encodes it.
func edit(t *testing.T, report []byte, fix func(finding map[string]any)) []byte {
	t.Helper()
	r := decode(t, report)
	findings := r["findings"].([]any)
	if len(findings) == 0 {
		t.Fatal("the fixture's report has no finding")
	}
	fix(findings[0].(map[string]any))
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// leaves are the deepest causes of a validation error: each keyword that
// failed, and where.
func leaves(err error) []*jsonschema.ValidationError {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []*jsonschema.ValidationError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, e)
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

// TestRejectsBrokenReport: the validator refuses a report with a value of
// the wrong type, a missing required key, or a severity the format does
// not have, and says where; the published schema accepts what a later
// version may add (a key, a finding id) while the tests' strict reading
// refuses it.
func TestRejectsBrokenReport(t *testing.T) {
	good := reportOf(t, synflood)
	if err := testutil.SchemaError(schema.Report, good); err != nil {
		t.Fatalf("the fixture's report does not validate: %v", err)
	}
	pub := compilePublished(t, schema.Report)
	validPublished := func(data []byte) bool {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return pub.Validate(doc) == nil
	}
	for _, tc := range []struct {
		name      string
		fix       func(f map[string]any)
		kind      string // the failing keyword's kind, as the validator names it
		at        string // the instance location of the failure
		published bool   // whether the published schema accepts it
	}{
		{"wrong type", func(f map[string]any) {
			f["evidence"].([]any)[0].(map[string]any)["value"] = "2178"
		}, "type", "/findings/0/evidence/0/value", false},
		{"missing required key", func(f map[string]any) { delete(f, "severity") }, "required", "/findings/0", false},
		{"unknown severity", func(f map[string]any) { f["severity"] = "fatal" }, "enum", "/findings/0/severity", false},
		{"commands null", func(f map[string]any) {
			f["recommendations"].([]any)[0].(map[string]any)["commands"] = nil
		}, "type", "/findings/0/recommendations/0/commands", false},
		{"future key", func(f map[string]any) { f["confidence"] = 0.9 }, "additionalProperties", "/findings/0", true},
		{"future finding id", func(f map[string]any) { f["id"] = "quic-drops" }, "enum", "/findings/0/id", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := edit(t, good, tc.fix)
			if got := validPublished(bad); got != tc.published {
				t.Errorf("published schema accepts it: %v, want %v", got, tc.published)
			}
			err := testutil.SchemaError(schema.Report, bad)
			if err == nil {
				t.Fatal("the strict schema accepts it")
			}
			var found []string
			for _, l := range leaves(err) {
				k := l.ErrorKind.KeywordPath()
				loc := "/" + strings.Join(l.InstanceLocation, "/")
				found = append(found, strings.Join(k, "/")+" at "+loc)
				if len(k) > 0 && k[len(k)-1] == tc.kind && loc == tc.at {
					return
				}
			}
			t.Errorf("errors %v, want %s at %s", found, tc.kind, tc.at)
		})
	}
	// A report's schema key names its version: another is refused.
	r := decode(t, good)
	r["schema"] = "snapdiag.report/v2"
	bad, _ := json.Marshal(r)
	l := leaves(testutil.SchemaError(schema.Report, bad))
	if len(l) != 1 || !slices.Equal(l[0].InstanceLocation, []string{"schema"}) {
		t.Fatalf("a v2 report fails at %v, want at /schema alone", l)
	}
	if _, ok := l[0].ErrorKind.(*kind.Const); !ok {
		t.Errorf("a v2 report fails by %T, want a const", l[0].ErrorKind)
	}
}

// TestPublishedAcceptsGrowth: a document of each schema with a key added by
// some later version still validates against the published schema, so an
// old reader keeps working, while the tests' strict reading refuses it.
func TestPublishedAcceptsGrowth(t *testing.T) {
	members := testutil.ReadBundle(t, synflood)
	firstLine := func(b []byte) []byte { line, _, _ := bytes.Cut(b, []byte("\n")); return line }
	docs := map[string][]byte{
		schema.Report:        reportOf(t, synflood),
		schema.Manifest:      members["manifest.json"],
		schema.Listeners:     members["samples/000/listeners.json"],
		schema.SampleTime:    members["samples/000/time"],
		schema.SocketSummary: members["sockets/summary.json"],
		schema.Socket:        firstLine(members["sockets/tcp.jsonl"]),
		schema.Processes:     []byte(`[{"pid":1,"comm":"init","listeners":["0.0.0.0:22"],"open_files":3,"threads":1,"tasks":[1]}]`),
		schema.WatchLog:      []byte(`{"time":"2026-12-05T23:00:00.123+00:00","level":"WARN","msg":"check failed","kind":"tcp","consecutive":1}`),
		schema.Selftest: []byte(`{"schema":"snapdiag.selftest/v1","kernel":"6.18.44","passed":true,"seconds":7.0,"incidents":[` +
			`{"name":"healthy-busy","expected":{"below":"critical"},"said":[{"id":"listen-drops-history","severity":"info"}],"status":"pass","seconds":1.5}]}`),
		schema.Diff: diffOf(t, synflood, "../fixtures/synflood-cookies-on-v4/bundle.tar.zst"),
		schema.Pending: []byte(`{"format":"snapdiag.pending/v1","bundle":"snapdiag-web1-20260101T000000Z.tar.zst","target":"s3://fleet/prod",` +
			`"key":"prod/web1/snapdiag-web1-20260101T000000Z.tar.zst","created":"2026-01-01T00:00:01Z","attempts":1,` +
			`"last_attempt":"2026-01-01T00:00:02Z","last_error":"store unreachable: 127.0.0.1:9000: connection refused"}`),
		schema.Fleet: []byte(`{"schema":"snapdiag.fleet/v1","source":"s3://fleet/prod","bundles":1,"failed":[],"days":["2026-01-01"],` +
			`"hosts":[{"host":"web1","bundles":1,"incidents":1,"days":[{"day":"2026-01-01","worst":"critical","bundles":1,"incidents":1}]}],` +
			`"healthy_hosts":[],"recurring":[],"half_open":{"incidents":1,"class":"one-incident-cannot-tell","evidence":["1 SYN-queue incidents"],` +
			`"sources":[{"addr":"10.0.0.2","prefix":"10.0.0.0/24","incidents":1,"hosts":["web1"],"bundles":1,"recurrent":false}],` +
			`"incidents_with_sources":1,"incidents_none_seen":0,"incidents_unknown":0,"sightings":1,"recurrent_sources":0,"once_sources":1,` +
			`"recurrent_share":0,"top_share":1,"prefixes":1,"hosts":1,"bundles":1,` +
			`"by_prefix":[{"prefix":"10.0.0.0/24","incidents":1,"hosts":["web1"],"sources":1,"per_incident":1,"recurrent":false}],` +
			`"recurrent_prefixes":0,"prefix_recurrent_share":0},` +
			`"load":[{"host":"web1","key":"prod/web1/a.tar.zst","captured_at":"2026-01-01T00:00:00Z","worst":"critical","accept_rate":null,` +
			`"history_samples":0,"history_accept_rate":null}],` +
			`"hours":[],"busiest":{"hours":[],"zone":"UTC","sampled_hours":0,"incidents":1,"at_busiest":0},"worst":"critical"}`),
	}
	for _, name := range schema.Names() {
		doc := docs[name]
		if err := testutil.SchemaError(name, doc); err != nil {
			t.Fatalf("%s: the sample document does not validate: %v", name, err)
		}
		// Numbers stay as written: a uint64 does not survive a float64.
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		// The new key goes into the document's object, or each element's.
		switch v := v.(type) {
		case map[string]any:
			v["added_later"] = 1
		case []any:
			if len(v) == 0 {
				t.Fatalf("%s: the sample document is an empty list", name)
			}
			for _, e := range v {
				e.(map[string]any)["added_later"] = 1
			}
		}
		grown, _ := json.Marshal(v)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(grown))
		if err != nil {
			t.Fatal(err)
		}
		if err := compilePublished(t, name).Validate(inst); err != nil {
			t.Errorf("%s: the published schema refuses a key added later: %v", name, err)
		}
		if testutil.SchemaError(name, grown) == nil {
			t.Errorf("%s: the strict reading accepts a key the schema does not name", name)
		}
	}
}

// TestWholeNodeValidates: a whole-node bundle (capture --all-netns), its
// namespaces' members and its report, whose findings name their namespace
// and which summarises every namespace, validate against the schemas.
func TestWholeNodeValidates(t *testing.T) {
	healthy := "../fixtures/healthy-busy/bundle.tar.zst"
	nss := []nodebundle.Namespace{
		{NetNS: nodebundle.Pod(4026532101, "shop", "web-0", "web"), From: healthy},
		{NetNS: nodebundle.Pod(4026532102, "shop", "web-1", "web"), From: synflood, Detail: true},
	}
	p := nodebundle.Write(t, t.TempDir(), healthy, nss)
	if n := testutil.ValidateBundle(t, p); n < 3+2*3 {
		t.Errorf("%d JSON members validated, want the namespaces' listeners too", n)
	}
	report := reportOf(t, p)
	r := decode(t, report)
	if ns, _ := r["namespaces"].([]any); len(ns) != 3 {
		t.Fatalf("report namespaces: %v", r["namespaces"])
	}
	named := 0
	for _, f := range r["findings"].([]any) {
		if _, ok := f.(map[string]any)["netns"]; ok {
			named++
		}
	}
	if named == 0 {
		t.Fatal("no finding names its namespace")
	}
	testutil.ValidateReport(t, report)
}
