package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"nanofaas.dev/conformance"
)

const miniSpec = `# Spec

Version: 1.2.3

## RT-X: Things

### RT-X-001: A thing happens
- **Level:** MUST
- **Modes:** HTTP, WARM
- **Scenarios:` + "** `conformance run`, `TestContainerX`" + `

The runtime MUST do the thing.

### RT-X-002: Another thing
- **Level:** MAY
- **Modes:** all
- **Scenarios:` + "** `a/b.txtar`" + `

It MAY do another.
`

func TestParseSpec(t *testing.T) {
	s, err := conformance.ParseSpec(miniSpec)
	if err != nil {
		t.Fatal(err)
	}
	want := &conformance.Spec{
		Version: "1.2.3",
		Groups:  []conformance.Group{{ID: "RT-X", Title: "Things"}},
		Requirements: []conformance.Requirement{
			{ID: "RT-X-001", Level: conformance.Must, Title: "A thing happens", Side: "RT", Group: "RT-X",
				Modes: []string{"HTTP", "WARM"}, Scenarios: []string{"conformance run", "TestContainerX"}, Text: "The runtime MUST do the thing."},
			{ID: "RT-X-002", Level: conformance.May, Title: "Another thing", Side: "RT", Group: "RT-X",
				Modes: conformance.Modes, Scenarios: []string{"a/b.txtar"}, Text: "It MAY do another."},
		},
	}
	if diff := cmp.Diff(want, s, cmp.AllowUnexported(conformance.Spec{})); diff != "" {
		t.Errorf("ParseSpec (-want +got):\n%s", diff)
	}
}

func TestParseSpecRejects(t *testing.T) {
	for name, tc := range map[string]struct{ from, to, want string }{
		"no version":        {"Version: 1.2.3", "", "no \"Version: X.Y.Z\" line"},
		"duplicate id":      {"RT-X-002: Another", "RT-X-001: Another", "RT-X-001 is defined twice"},
		"wrong group":       {"### RT-X-002", "### RT-Y-002", "is in group RT-X"},
		"no level":          {"- **Level:** MAY\n", "", "RT-X-002 has no **Level:** line"},
		"bad level":         {"**Level:** MAY", "**Level:** OPTIONAL", `level "OPTIONAL"`},
		"bad mode":          {"HTTP, WARM", "HTTP, GRPC", `mode "GRPC"`},
		"no scenario":       {"- **Scenarios:** `a/b.txtar`\n", "", "RT-X-002 names no scenario"},
		"level not in text": {"It MAY do another.", "It does another.", "RT-X-002 is MAY but its statement does not say MAY"},
		"unknown field":     {"- **Level:** MAY", "- **Level:** MAY\n- **Owner:** me", "unknown field line"},
		"unquoted scenario": {"`a/b.txtar`", "a/b.txtar", "is not in backquotes"},
	} {
		t.Run(name, func(t *testing.T) {
			text := strings.Replace(miniSpec, tc.from, tc.to, 1)
			if text == miniSpec {
				t.Fatalf("the test's replacement of %q changed nothing", tc.from)
			}
			_, err := conformance.ParseSpec(text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestEmbeddedSpecParses(t *testing.T) {
	s, err := conformance.ParseSpec(conformance.SpecText())
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "0.2.0" {
		t.Errorf("version %q", s.Version)
	}
	for _, r := range s.Requirements {
		if !conformance.IsID(r.ID) {
			t.Errorf("bad id %q", r.ID)
		}
	}
}

func TestLevelIncludes(t *testing.T) {
	got := map[conformance.Level][]conformance.Level{}
	for _, run := range []conformance.Level{conformance.Must, conformance.Should, conformance.May} {
		for _, req := range []conformance.Level{conformance.Must, conformance.Should, conformance.May} {
			if run.Includes(req) {
				got[run] = append(got[run], req)
			}
		}
	}
	want := map[conformance.Level][]conformance.Level{
		conformance.Must:   {conformance.Must},
		conformance.Should: {conformance.Must, conformance.Should},
		conformance.May:    {conformance.Must, conformance.Should, conformance.May},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Includes (-want +got):\n%s", diff)
	}
}

func TestCLIList(t *testing.T) {
	spec := conformance.LoadSpec()
	var out, errOut bytes.Buffer
	if st := conformance.Main(context.Background(), []string{"list"}, &out, &errOut); st != 0 {
		t.Fatalf("list: exit %d: %s", st, errOut.String())
	}
	for _, r := range spec.Requirements {
		if !strings.Contains(out.String(), r.ID) || !strings.Contains(out.String(), r.Title) {
			t.Errorf("list does not show %s %q", r.ID, r.Title)
		}
	}

	out.Reset()
	if st := conformance.Main(context.Background(), []string{"list", "--side", "RT", "--mode", "STDIO", "--json"}, &out, &errOut); st != 0 {
		t.Fatalf("list --json: exit %d: %s", st, errOut.String())
	}
	var listed struct {
		Version      string
		Requirements []conformance.Requirement
	}
	if err := json.Unmarshal(out.Bytes(), &listed); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range spec.Requirements {
		if r.Side == "RT" && r.AppliesTo("STDIO") {
			want = append(want, r.ID)
		}
	}
	var got []string
	for _, r := range listed.Requirements {
		got = append(got, r.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" || listed.Version != spec.Version {
		t.Errorf("list --side RT --mode STDIO --json (-want +got):\n%s", diff)
	}

	out.Reset()
	if st := conformance.Main(context.Background(), []string{"spec"}, &out, &errOut); st != 0 || out.String() != conformance.SpecText() {
		t.Errorf("spec: exit %d, printed %d bytes of %d", st, out.Len(), len(conformance.SpecText()))
	}
}

func TestCLIUsageErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"no command":   {},
		"no image":     {"run"},
		"bad mode":     {"run", "--image", "x", "--mode", "GRPC"},
		"bad payload":  {"run", "--image", "x", "--payload", "{nope"},
		"bad level":    {"run", "--image", "x", "--level", "COULD"},
		"unknown flag": {"list", "--frobnicate"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if st := conformance.Main(context.Background(), args, &out, &errOut); st != conformance.ExitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", st, conformance.ExitUsage, errOut.String())
			}
		})
	}
}
