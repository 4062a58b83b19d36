package analyze

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// declaredCounters reads the package's source and returns every counter
// declared with newCounter and every /proc/net/dev field declared with
// newDevField, by name. It fails the test when a counter is minted outside
// the files that may (a parser's file, the loader, the type's own file):
// a rule that wrote Counter{...} or newCounter(...) itself would escape
// the check that recorded kernels have shown the name.
func declaredCounters(t *testing.T) (counters, devFields []string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	consts := map[string]ast.Expr{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, sp := range g.Specs {
					vs := sp.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							consts[n.Name] = vs.Values[i]
						}
					}
				}
			}
		}
	}
	// str evaluates a string made of literals, package constants and +.
	var str func(e ast.Expr) (string, bool)
	str = func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind != token.STRING {
				return "", false
			}
			s, err := strconv.Unquote(e.Value)
			return s, err == nil
		case *ast.Ident:
			if v, ok := consts[e.Name]; ok {
				return str(v)
			}
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				a, ok1 := str(e.X)
				b, ok2 := str(e.Y)
				return a + b, ok1 && ok2
			}
		case *ast.ParenExpr:
			return str(e.X)
		}
		return "", false
	}
	for _, f := range parsed {
		file := filepath.Base(fset.Position(f.Pos()).Filename)
		parser := strings.HasPrefix(file, "parse_")
		mayMint := parser || file == "counter.go" || file == "snapshot.go"
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && (id.Name == "Counter" || id.Name == "devField") && !mayMint {
					t.Errorf("%s: %s literal outside a parser's file: declare the counter beside its parser",
						fset.Position(n.Pos()), id.Name)
				}
			case *ast.CallExpr:
				id, ok := n.Fun.(*ast.Ident)
				if !ok {
					return true
				}
				switch id.Name {
				case "newCounter", "newDevField":
					if !parser {
						t.Errorf("%s: %s outside a parse_*.go file", fset.Position(n.Pos()), id.Name)
					}
					var parts []string
					for _, a := range n.Args {
						s, ok := str(a)
						if !ok {
							t.Errorf("%s: %s with an argument that is not a constant string", fset.Position(a.Pos()), id.Name)
						}
						parts = append(parts, s)
					}
					if id.Name == "newCounter" {
						counters = append(counters, strings.Join(parts, "."))
					} else {
						devFields = append(devFields, strings.Join(parts, "."))
					}
				case "ParseCounter":
					t.Errorf("%s: ParseCounter is for data; name a declared counter", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
	return counters, devFields
}

// recordedBundles loads the bundles recorded from real kernels: the lab's
// incidents under fixtures/ and this machine's testdata/host.
func recordedBundles(t *testing.T) map[string]*Snapshot {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "fixtures", "*", "bundle.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Snapshot{}
	for _, p := range paths {
		s, err := LoadPath(p)
		if err != nil {
			t.Fatalf("load %s: %v", p, err)
		}
		out[p] = s
	}
	s, err := LoadDir(filepath.Join("testdata", "host"))
	if err != nil {
		t.Fatalf("load testdata/host: %v", err)
	}
	out["testdata/host"] = s
	return out
}

// TestRuleCountersRecorded fails when the package declares a counter that
// no recorded kernel has ever shown: a misspelt or renamed counter would
// otherwise leave its rule silently blind.
func TestRuleCountersRecorded(t *testing.T) {
	counters, devFields := declaredCounters(t)
	if len(counters) < 20 || len(devFields) == 0 {
		t.Fatalf("found %d counters and %d /proc/net/dev fields declared: the source scan is broken", len(counters), len(devFields))
	}
	bundles := recordedBundles(t)
	if len(bundles) < 2 {
		t.Fatalf("%d recorded bundles: want the lab fixtures under ../fixtures and testdata/host", len(bundles))
	}
	seen := map[string][]string{}
	for p, s := range bundles {
		for _, c := range s.Counters() {
			seen[c.String()] = append(seen[c.String()], p)
		}
	}
	for _, c := range counters {
		if len(seen[c]) == 0 {
			t.Errorf("counter %s: no recorded bundle has it (misspelt, or a kernel the fixtures lack)", c)
		}
	}
	for _, f := range devFields {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(seen)), func(c string) bool {
			return strings.HasPrefix(c, devGroup+".") && strings.HasSuffix(c, "."+f)
		}) {
			t.Errorf("/proc/net/dev field %s: no recorded bundle has it for any interface", f)
		}
	}
}

// TestDevFieldRoundTrip: a field's counter for an interface names the
// interface back, and other counters do not.
func TestDevFieldRoundTrip(t *testing.T) {
	c := devRxDrop.of("eth0.100")
	if got, ok := devRxDrop.iface(c); !ok || got != "eth0.100" {
		t.Errorf("iface(%s) = %q, %v", c, got, ok)
	}
	for _, other := range []Counter{devRxFifo.of("eth0"), tcpExtListenDrops, ParseCounter("Dev.rx_drop")} {
		if got, ok := devRxDrop.iface(other); ok {
			t.Errorf("iface(%s) = %q, want no interface", other, got)
		}
	}
}
