package conformance_test

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"nanofaas.dev/conformance"
)

// The forms a scenario takes in SPEC.md.
const runScenario = "conformance run"

var (
	goScenario = regexp.MustCompile(`^Test[A-Z][A-Za-z0-9]*$`)
	coversLine = regexp.MustCompile(`^Covers: (.+)$`)
)

// goScenarios reads the container scenarios: the TestContainer* and
// TestExample* functions of this package, with the requirement ids of their
// "Covers:" doc comment line.
func goScenarios(t *testing.T) map[string][]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !goScenario.MatchString(fn.Name.Name) {
				continue
			}
			n := fn.Name.Name
			if !strings.HasPrefix(n, "TestContainer") && !strings.HasPrefix(n, "TestExample") {
				continue
			}
			var ids []string
			if fn.Doc != nil {
				for _, line := range strings.Split(fn.Doc.Text(), "\n") {
					if m := coversLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
						for _, id := range strings.Split(m[1], ",") {
							ids = append(ids, strings.TrimSpace(id))
						}
					}
				}
			}
			out[n] = ids
		}
	}
	return out
}

// TestEveryRequirementIsCovered checks SPEC.md against the scenarios: every
// requirement names at least one scenario and every named scenario exists;
// every file in conformance/testdata/script is named after a requirement
// that names it, and says so on its first line; every container scenario
// says which requirements it covers ("Covers:"), and those name it back;
// `conformance run` checks exactly the requirements that name it.
func TestEveryRequirementIsCovered(t *testing.T) {
	spec := conformance.LoadSpec()
	root := repoRoot(t)
	gos := goScenarios(t)
	checked := conformance.CheckedIDs()
	named := map[string]bool{} // conformance scenario files named by the spec

	for _, r := range spec.Requirements {
		if len(r.Scenarios) == 0 {
			t.Errorf("%s names no scenario", r.ID)
		}
		for _, sc := range r.Scenarios {
			switch {
			case sc == runScenario:
				if r.Side != "RT" {
					t.Errorf("%s: `conformance run` checks only RT requirements", r.ID)
				}
				if !slices.Contains(checked, r.ID) {
					t.Errorf("%s names `conformance run`, which has no check for it", r.ID)
				}
			case strings.HasSuffix(sc, ".txtar"):
				if _, err := os.Stat(filepath.Join(root, sc)); err != nil {
					t.Errorf("%s names scenario %s, which does not exist", r.ID, sc)
				}
				if dir, file := filepath.Split(sc); dir == "conformance/testdata/script/" {
					named[file] = true
					if file != r.ID+".txtar" {
						t.Errorf("%s names %s: a conformance scenario is named after the one requirement it checks", r.ID, sc)
					}
				}
			case goScenario.MatchString(sc):
				ids, ok := gos[sc]
				if !ok {
					t.Errorf("%s names %s, which is not a TestContainer*/TestExample* function of conformance/", r.ID, sc)
				} else if !slices.Contains(ids, r.ID) {
					t.Errorf("%s names %s, whose Covers: line does not list it (it lists %v)", r.ID, sc, ids)
				}
			default:
				t.Errorf("%s: scenario %q is not a .txtar path, a Test function or `conformance run`", r.ID, sc)
			}
		}
	}

	// Every runner check is a requirement that names `conformance run`.
	for _, id := range checked {
		r, ok := spec.Requirement(id)
		if !ok {
			t.Errorf("`conformance run` checks %s, which SPEC.md does not define", id)
		} else if !slices.Contains(r.Scenarios, runScenario) {
			t.Errorf("`conformance run` checks %s, whose scenarios do not name it", id)
		}
	}

	// Every container scenario is labelled, and the labels name it back.
	for name, ids := range gos {
		if len(ids) == 0 {
			t.Errorf("container scenario %s has no \"Covers: ID, ...\" line in its doc comment", name)
		}
		for _, id := range ids {
			r, ok := spec.Requirement(id)
			if !ok {
				t.Errorf("%s covers %s, which SPEC.md does not define", name, id)
			} else if !slices.Contains(r.Scenarios, name) {
				t.Errorf("%s covers %s, whose scenarios do not name %s", name, id, name)
			}
		}
	}

	// Every conformance testscript scenario is a named requirement's, and
	// its first line states that requirement: "# ID: Title".
	files, err := filepath.Glob(filepath.Join("testdata", "script", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		id, ok := strings.CutSuffix(base, ".txtar")
		if !ok {
			t.Errorf("%s: scenario files end in .txtar", f)
			continue
		}
		r, known := spec.Requirement(id)
		if !known {
			t.Errorf("%s is named after no requirement of SPEC.md", f)
			continue
		}
		if !named[base] {
			t.Errorf("%s: SPEC.md's %s does not name this scenario", f, id)
		}
		if first := firstLine(t, f); first != fmt.Sprintf("# %s: %s", r.ID, r.Title) {
			t.Errorf("%s: first line %q, want %q", f, first, "# "+r.ID+": "+r.Title)
		}
	}
}

// TestSpecCounts logs the requirements by side and level (and keeps the spec
// from shrinking to nothing by accident).
func TestSpecCounts(t *testing.T) {
	spec := conformance.LoadSpec()
	counts := map[string]int{}
	for _, r := range spec.Requirements {
		counts[r.Side+" "+string(r.Level)]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%-9s %d", k, counts[k])
	}
	t.Logf("spec %s: %d requirements", spec.Version, len(spec.Requirements))
	if counts["WD MUST"] == 0 || counts["RT MUST"] == 0 {
		t.Errorf("the spec has no MUST requirement on one side: %v", counts)
	}
}

func firstLine(t *testing.T, name string) string {
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	return sc.Text()
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
