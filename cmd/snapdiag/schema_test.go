package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/schema"
)

// TestSchemaCommand: snapdiag schema lists every schema by name, prints
// each byte for byte as the repository holds it, and refuses an unknown
// name as a usage error.
func TestSchemaCommand(t *testing.T) {
	var out bytes.Buffer
	if code := Main([]string{"schema"}, &out, io.Discard); code != exitOK {
		t.Fatalf("schema: exit %d", code)
	}
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		listed = append(listed, strings.Fields(line)[0])
	}
	if strings.Join(listed, " ") != strings.Join(schema.Names(), " ") {
		t.Errorf("schema lists %v, want %v", listed, schema.Names())
	}
	for _, name := range schema.Names() {
		out.Reset()
		if code := Main([]string{"schema", name}, &out, io.Discard); code != exitOK {
			t.Errorf("schema %s: exit %d", name, code)
		}
		want, err := schema.Get(name)
		if err != nil || !bytes.Equal(out.Bytes(), want) {
			t.Errorf("schema %s printed %d bytes, want the %d of the repository's file (%v)", name, out.Len(), len(want), err)
		}
	}
	out.Reset()
	if code := Main([]string{"schema", "no-such-schema"}, &out, io.Discard); code != exitUsage || out.Len() != 0 {
		t.Errorf("schema no-such-schema: exit %d, stdout %q; want %d and nothing", code, out.String(), exitUsage)
	}
}

// TestAnalyzeJSONStream: analyze --format json of several bundles writes
// one report per line, each valid against the report schema.
func TestAnalyzeJSONStream(t *testing.T) {
	fixtures, err := filepath.Glob(filepath.Join("..", "..", "fixtures", "*", "bundle.tar.zst"))
	if err != nil || len(fixtures) < 2 {
		t.Fatalf("fixtures %v: %v", fixtures, err)
	}
	var out bytes.Buffer
	if code := Main(append([]string{"analyze", "--format", "json"}, fixtures...), &out, io.Discard); code != exitCritical {
		t.Errorf("analyze of the fixtures: exit %d, want %d", code, exitCritical)
	}
	if n := testutil.ValidateReport(t, out.Bytes()); n != len(fixtures) {
		t.Errorf("%d reports for %d bundles", n, len(fixtures))
	}
}
