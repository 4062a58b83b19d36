package testutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/snapdiag/snapdiag/schema"
)

// Strict returns the strict reading of a published schema, the one the
// tests hold snapdiag's own output to: every object schema that names its
// properties and says nothing of others refuses unnamed keys, and every
// open list (anyOf an enum and a pattern for values to come) is its enum
// alone. A field or value the code writes but the schema lacks then fails
// the test that produced it, while the published schema keeps accepting
// additions for readers of older versions.
func Strict(published []byte) ([]byte, error) {
	var doc any
	if err := json.Unmarshal(published, &doc); err != nil {
		return nil, fmt.Errorf("decode schema: %w", err)
	}
	return json.Marshal(strict(doc))
}

func strict(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			v[k] = strict(sub)
		}
		if _, ok := v["properties"]; ok && v["additionalProperties"] == nil && v["unevaluatedProperties"] == nil {
			v["additionalProperties"] = false
		}
		if alts, ok := v["anyOf"].([]any); ok && len(alts) == 2 {
			if known, ok := alts[0].(map[string]any); ok && len(known) == 1 && known["enum"] != nil {
				delete(v, "anyOf")
				v["enum"] = known["enum"]
			}
		}
		return v
	case []any:
		for i, sub := range v {
			v[i] = strict(sub)
		}
		return v
	}
	return v
}

// strictSchemas compiles the strict reading of every schema once per test
// binary, asserting formats (date-time) as well.
var strictSchemas = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, name := range schema.Names() {
		published, err := schema.Get(name)
		if err != nil {
			return nil, err
		}
		data, err := Strict(published)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		if err := c.AddResource(schema.ID(name), doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
	}
	out := map[string]*jsonschema.Schema{}
	for _, name := range schema.Names() {
		s, err := c.Compile(schema.ID(name))
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", name, err)
		}
		out[name] = s
	}
	return out, nil
})

// SchemaError validates data, one JSON document, against the strict
// reading of the schema called name (a schema.Name); nil when it is valid.
// A document that breaks the schema gives a *jsonschema.ValidationError.
func SchemaError(name string, data []byte) error {
	schemas, err := strictSchemas()
	if err != nil {
		return err
	}
	s, ok := schemas[name]
	if !ok {
		return fmt.Errorf("no schema %q", name)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("decode %s document: %w", name, err)
	}
	return s.Validate(doc)
}

// ValidateJSON fails t unless data validates against the strict reading of
// the schema called name; for a schema of JSON Lines (the report, the
// socket table, watch's log) every non-empty line is one document. It
// returns the number of documents validated.
func ValidateJSON(t testing.TB, name string, data []byte) int {
	t.Helper()
	n, err := validateDocs(name, data)
	if err != nil {
		t.Errorf("schema %s: %v", name, err)
	}
	return n
}

// ValidateReport fails t unless data, the output of analyze --format json
// (one report per line), validates against the report schema.
func ValidateReport(t testing.TB, data []byte) int {
	t.Helper()
	return ValidateJSON(t, schema.Report, data)
}

// ValidateBundle fails t unless every JSON member of the bundle at path
// (the manifest, each sample's time and listeners.json, the socket summary
// and table, processes.json) validates against its schema. It returns the
// number of documents validated.
func ValidateBundle(t testing.TB, path string) int {
	t.Helper()
	return ValidateMembers(t, ReadBundle(t, path))
}

// ValidateFS is ValidateBundle for a bundle unpacked into fsys (a directory
// of a fixture, or a bundle built in memory).
func ValidateFS(t testing.TB, fsys fs.FS) int {
	t.Helper()
	members := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if _, ok := schema.ForMember(p); ok {
			members[p], err = fs.ReadFile(fsys, p)
		}
		return err
	})
	if err != nil {
		t.Fatalf("read bundle members: %v", err)
	}
	return ValidateMembers(t, members)
}

// ValidateMembers fails t unless every JSON member among members (by
// member name, as ReadBundle gives them) validates against its schema. A
// bundle always has a manifest, so one without fails too.
func ValidateMembers(t testing.TB, members map[string][]byte) int {
	t.Helper()
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	sort.Strings(names)
	n, manifest := 0, false
	for _, name := range names {
		d, ok := schema.ForMember(name)
		if !ok {
			continue
		}
		manifest = manifest || d.Name == schema.Manifest
		k, err := validateDocs(d.Name, members[name])
		if err != nil {
			t.Errorf("schema %s: member %s: %v", d.Name, name, err)
		}
		n += k
	}
	if !manifest {
		t.Errorf("schema: the bundle has no manifest")
	}
	return n
}

// validateDocs validates data as one document of the schema called name,
// or as one per line for a schema of JSON Lines.
func validateDocs(name string, data []byte) (int, error) {
	lines := false
	for _, d := range schema.Docs() {
		if d.Name == name {
			lines = d.Lines
		}
	}
	if !lines {
		return 1, SchemaError(name, data)
	}
	n := 0
	for i, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		n++
		if err := SchemaError(name, []byte(line)); err != nil {
			return n, fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return n, nil
}
