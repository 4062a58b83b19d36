package analyze

import (
	"bytes"
	"path/filepath"
	"regexp"
	"testing"
)

// onePlural is "1" before a plural noun of the reports: "1 samples",
// "from 1 sources".
var onePlural = regexp.MustCompile(`\b1 (samples|sources|handshakes|requests|listeners)\b`)

// TestReportsSayOneInSingular renders every lab fixture's report, and each
// cut to its first sample, and finds no "1" before a plural noun.
func TestReportsSayOneInSingular(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "fixtures", "*", "bundle.tar.zst"))
	if len(paths) == 0 {
		t.Fatal("no lab fixtures under ../fixtures")
	}
	for _, p := range paths {
		for _, samples := range []int{0, 1} {
			s, err := LoadPath(p)
			if err != nil {
				t.Fatal(err)
			}
			if samples > 0 && len(s.Samples) > samples {
				s.Samples = s.Samples[:samples]
			}
			var text, md bytes.Buffer
			r := Analyze(s, p, Rules())
			if err := RenderText(&text, r, TextOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := RenderMarkdown(&md, r); err != nil {
				t.Fatal(err)
			}
			for _, out := range [][]byte{text.Bytes(), md.Bytes()} {
				if m := onePlural.Find(out); m != nil {
					t.Errorf("%s (samples cut to %d): %q", p, samples, m)
				}
			}
		}
	}
}
