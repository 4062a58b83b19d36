package schema_test

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/snapdiag/snapdiag/analyze"
	"github.com/snapdiag/snapdiag/bundle"
	"github.com/snapdiag/snapdiag/fleet"
	"github.com/snapdiag/snapdiag/schema"
	"github.com/snapdiag/snapdiag/selftest"
	"github.com/snapdiag/snapdiag/ship"
)

func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func published(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := schema.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, data)
}

// compilePublished compiles the schema as a pipeline would: the file as
// published, draft 2020-12 checked against its meta-schema, formats
// asserted.
func compilePublished(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	data, err := schema.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(schema.ID(name), doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(schema.ID(name))
	if err != nil {
		t.Fatalf("schema %s: %v", name, err)
	}
	return s
}

// TestSchemasCompile: every schema is draft 2020-12, valid against its
// meta-schema, and its $id is where the repository keeps it.
func TestSchemasCompile(t *testing.T) {
	if len(schema.Names()) != 12 {
		t.Errorf("names %v", schema.Names())
	}
	for _, name := range schema.Names() {
		compilePublished(t, name)
		doc := published(t, name)
		if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema %v", name, doc["$schema"])
		}
		if doc["$id"] != schema.ID(name) || !strings.HasSuffix(schema.ID(name), "/schema/"+name+".schema.json") {
			t.Errorf("%s: $id %v, want %s", name, doc["$id"], schema.ID(name))
		}
	}
	if _, err := schema.Get("nope"); err == nil {
		t.Error("Get of an unknown name succeeded")
	}
}

// TestForMember: each JSON member of a bundle maps to its schema, raw
// kernel files to none.
func TestForMember(t *testing.T) {
	for member, want := range map[string]string{
		bundle.PathManifest:                              schema.Manifest,
		bundle.SampleFile(0, bundle.SampleTimeFile):      schema.SampleTime,
		bundle.SampleFile(12, bundle.SampleListeners):    schema.Listeners,
		bundle.PathSocketsSummary:                        schema.SocketSummary,
		bundle.PathSocketsTCP:                            schema.Socket,
		bundle.PathProcesses:                             schema.Processes,
		bundle.SampleFile(0, bundle.SampleNetstat):       "",
		"proc/sys/net/core/time":                         "",
		bundle.PathPackets:                               "",
		bundle.SampleFile(0, bundle.SampleListeners+"x"): "",
	} {
		d, ok := schema.ForMember(member)
		if d.Name != want || ok != (want != "") {
			t.Errorf("ForMember(%s) = %q, %v; want %q", member, d.Name, ok, want)
		}
	}
}

// The Go type each schema describes.
var goTypes = map[string]reflect.Type{
	schema.Report:        reflect.TypeFor[analyze.Report](),
	schema.Manifest:      reflect.TypeFor[bundle.Manifest](),
	schema.Listeners:     reflect.TypeFor[[]bundle.Listener](),
	schema.SampleTime:    reflect.TypeFor[bundle.SampleTime](),
	schema.SocketSummary: reflect.TypeFor[bundle.SocketSummary](),
	schema.Socket:        reflect.TypeFor[bundle.Socket](),
	schema.Processes:     reflect.TypeFor[[]bundle.Process](),
	schema.Selftest:      reflect.TypeFor[selftest.Result](),
	schema.Pending:       reflect.TypeFor[ship.Pending](),
	schema.Fleet:         reflect.TypeFor[fleet.Report](),
	schema.Diff:          reflect.TypeFor[analyze.Diff](),
}

// TestSchemasCoverGoTypes walks each Go type beside its schema: every JSON
// field is a property of the schema with a matching type, every property is
// a field, and every required key is a field encoding/json always writes
// (no omitempty). It fails when a field is added to a record but not to
// its schema, even before any test writes the field.
func TestSchemasCoverGoTypes(t *testing.T) {
	for name, typ := range goTypes {
		doc := published(t, name)
		defs, _ := doc["$defs"].(map[string]any)
		cover(t, name, typ, doc, defs)
	}
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func cover(t *testing.T, at string, typ reflect.Type, sch map[string]any, defs map[string]any) {
	t.Helper()
	for {
		ref, ok := sch["$ref"].(string)
		if !ok {
			break
		}
		def, ok := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		if !ok {
			t.Errorf("%s: $ref %s not found", at, ref)
			return
		}
		sch = def
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	types := schemaTypes(sch)
	is := func(want string) {
		if !slices.Contains(types, want) && sch["enum"] == nil && sch["const"] == nil && sch["anyOf"] == nil {
			t.Errorf("%s: Go %s, schema type %v, want %s", at, typ, types, want)
		}
	}
	switch {
	case typ == timeType:
		is("string")
		if sch["format"] != "date-time" {
			t.Errorf("%s: a time without format date-time", at)
		}
		return
	case typ.Implements(textMarshalerType) || reflect.PointerTo(typ).Implements(textMarshalerType):
		is("string")
		return
	}
	switch typ.Kind() {
	case reflect.Struct:
		is("object")
		props, _ := sch["properties"].(map[string]any)
		fields := map[string]bool{}
		for f := range typ.Fields() {
			tag := f.Tag.Get("json")
			key, opts, _ := strings.Cut(tag, ",")
			if !f.IsExported() || key == "-" {
				continue
			}
			if key == "" {
				key = f.Name
			}
			fields[key] = true
			sub, ok := props[key].(map[string]any)
			if !ok {
				t.Errorf("%s: field %s (%q) is not in the schema", at, f.Name, key)
				continue
			}
			if req, _ := sch["required"].([]any); slices.Contains(req, any(key)) && strings.Contains(opts, "omitempty") {
				t.Errorf("%s: %q is required but omitted when empty", at, key)
			}
			cover(t, at+"."+key, f.Type, sub, defs)
		}
		for key := range props {
			if !fields[key] {
				t.Errorf("%s: schema property %q is no field of %s", at, key, typ)
			}
		}
	case reflect.Slice, reflect.Array, reflect.Map:
		// An array's elements are its items; a map's values, the
		// object's additionalProperties.
		want, key, mark := "array", "items", "[]"
		if typ.Kind() == reflect.Map {
			want, key, mark = "object", "additionalProperties", "{}"
		}
		is(want)
		if elem, ok := sch[key].(map[string]any); ok {
			cover(t, at+mark, typ.Elem(), elem, defs)
		} else {
			t.Errorf("%s: %s without %s", at, want, key)
		}
	case reflect.String:
		is("string")
	case reflect.Bool:
		is("boolean")
	case reflect.Float32, reflect.Float64:
		is("number")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		is("integer")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		is("integer")
		if min, ok := sch["minimum"].(float64); !ok || min < 0 {
			t.Errorf("%s: unsigned Go %s without minimum 0", at, typ)
		}
	default:
		t.Errorf("%s: Go kind %s not handled", at, typ.Kind())
	}
}

func schemaTypes(sch map[string]any) []string {
	switch v := sch["type"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

// enumAt returns the enum of the schema at the slash-separated path of
// keys in doc (the first alternative of an open list).
func enumAt(t *testing.T, doc map[string]any, path string) []string {
	t.Helper()
	var v any = doc
	for _, k := range strings.Split(path, "/") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: no %s", path, k)
		}
		v = m[k]
	}
	m := v.(map[string]any)
	if alts, ok := m["anyOf"].([]any); ok {
		m = alts[0].(map[string]any)
	}
	var out []string
	for _, e := range m["enum"].([]any) {
		out = append(out, e.(string))
	}
	sort.Strings(out)
	return out
}

func sorted(s ...string) []string { sort.Strings(s); return s }

// TestEnumsMatchCode: the closed lists of the schemas are the code's.
func TestEnumsMatchCode(t *testing.T) {
	report, manifest, socket := published(t, schema.Report), published(t, schema.Manifest), published(t, schema.Socket)
	var states, timers []string
	for i := range bundle.NumSocketStates {
		states = append(states, bundle.SocketStateName(i))
	}
	for i := 1; i <= 5; i++ {
		timers = append(timers, bundle.SocketTimerName(i))
	}
	for _, tc := range []struct {
		what string
		got  []string
		want []string
	}{
		{"severity", enumAt(t, report, "$defs/severity"), sorted(analyze.Critical.String(), analyze.Warning.String(), analyze.Info.String())},
		{"report status", enumAt(t, report, "$defs/status"), enumAt(t, manifest, "$defs/status")},
		{"status", enumAt(t, manifest, "$defs/status"),
			sorted(string(bundle.StatusOK), string(bundle.StatusAbsent), string(bundle.StatusFailed), string(bundle.StatusTimeout))},
		{"stopped_by", enumAt(t, manifest, "properties/stopped_by"), sorted(bundle.StoppedByDeadline, bundle.StoppedBySignal)},
		{"peak_rss_scope", enumAt(t, manifest, "$defs/cost/properties/peak_rss_scope"), sorted(bundle.PeakSinceCapture, bundle.PeakSinceProcess)},
		{"io_class", enumAt(t, manifest, "$defs/cost/properties/priority/properties/io_class"),
			sorted(bundle.IOClassNone, bundle.IOClassRealtime, bundle.IOClassBestEffort, bundle.IOClassIdle)},
		{"sampling method", enumAt(t, manifest, "$defs/packets/properties/sampling/properties/method"), []string{bundle.SamplingPerFlow}},
		{"plan", enumAt(t, report, "$defs/finding/properties/recommendations/items/properties/plan"), sorted(analyze.PlanPrimary, analyze.PlanWithoutCookies)},
		{"finding id", enumAt(t, report, "$defs/findingId"), sorted(
			analyze.IDSynQueueOverflow, analyze.IDSyncookiesActive, analyze.IDAcceptQueueOverflow, analyze.IDHalfOpenClients,
			analyze.IDUnreachableClients, analyze.IDConntrackFull, analyze.IDTimeWaitOverflow, analyze.IDEphemeralPorts,
			analyze.IDTCPMemoryPressure, analyze.IDFDExhaustion, analyze.IDSoftnetDrops, analyze.IDNICRxDrops,
			analyze.IDRiskySysctl, analyze.IDListenDropsHistory, analyze.IDBundleIncomplete, analyze.IDRuleError)},
		{"socket state", enumAt(t, socket, "properties/state"), sorted(states...)},
		{"timer", enumAt(t, socket, "properties/timer"), sorted(timers...)},
	} {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s enum (-code +schema):\n%s", tc.what, diff)
		}
	}
	// The report's copy of the manifest's cost must not drift from it:
	// each schema stands alone, for validators that fetch nothing.
	if diff := cmp.Diff(manifest["$defs"].(map[string]any)["cost"], report["$defs"].(map[string]any)["cost"]); diff != "" {
		t.Errorf("report $defs/cost differs from the manifest's (-manifest +report):\n%s", diff)
	}
}

// TestReportNetNSIsManifests: the report carries the manifest's netns as it
// is, so its schema describes it with the manifest's definitions, copied;
// this fails when one copy changes without the other.
func TestReportNetNSIsManifests(t *testing.T) {
	report, manifest := published(t, schema.Report), published(t, schema.Manifest)
	rdefs, _ := report["$defs"].(map[string]any)
	mdefs, _ := manifest["$defs"].(map[string]any)
	for _, def := range []string{"netns", "owner"} {
		if diff := cmp.Diff(mdefs[def], rdefs[def]); diff != "" {
			t.Errorf("report $defs/%s differs from the manifest's (-manifest +report):\n%s", def, diff)
		}
	}
}
