package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapdiag/snapdiag/internal/testutil"
	"github.com/snapdiag/snapdiag/schema"
)

// TestDiffExitCodes: diff exits 0 whenever it compared, whatever the
// differences, 1 when a bundle cannot be read (saying which), 2 on usage;
// its JSON validates against the diff schema.
func TestDiffExitCodes(t *testing.T) {
	fx := func(name string) string { return filepath.Join("..", "..", "fixtures", name, "bundle.tar.zst") }
	off, on := fx("synflood-cookies-off-v4"), fx("synflood-cookies-on-v4")
	// A real bundle cut short (a capture killed mid-write) is compared as
	// far as it goes.
	data, err := os.ReadFile(on)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "cut.tar.zst")
	if err := os.WriteFile(truncated, data[:len(data)*6/10], 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join("..", "..", "fixtures", "hostile", "garbage.bin")
	for _, c := range []struct {
		args []string
		code int
		json bool
	}{
		{[]string{"diff", off, on}, exitOK, false},
		{[]string{"diff", "--format", "json", off, on}, exitOK, true},
		{[]string{"diff", "--format", "json", off, off}, exitOK, true},
		{[]string{"diff", "--format", "json", off, truncated}, exitOK, true},
		{[]string{"diff", off, garbage}, exitError, false},
		{[]string{"diff", filepath.Join(t.TempDir(), "absent.tar.zst"), on}, exitError, false},
		{[]string{"diff", off}, exitUsage, false},
		{[]string{"diff", off, on, on}, exitUsage, false},
		{[]string{"diff", "--format", "yaml", off, on}, exitUsage, false},
	} {
		var out, errb bytes.Buffer
		code := Main(c.args, &out, &errb)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s", c.args, code, c.code, errb.String())
		}
		if c.json {
			testutil.ValidateJSON(t, schema.Diff, out.Bytes())
		}
		if code == exitError && errb.Len() == 0 {
			t.Errorf("%v: exit 1 without saying why", c.args)
		}
	}
}
