package conformance_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"nanofaas.dev/conformance"
)

func sampleReport() *conformance.Report {
	return &conformance.Report{
		SpecVersion: "0.1.0", Image: "img:1", Mode: "HTTP", Runtime: "HTTP", Level: conformance.Should,
		Started:  time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		Duration: 4200 * time.Millisecond,
		Results: []conformance.Result{
			{ID: "RT-IMG-001", Level: conformance.Must, Group: "RT-IMG", Title: "Entrypoint", Status: conformance.Pass, Duration: 1500 * time.Millisecond, Reason: "ok"},
			{ID: "RT-IMG-003", Level: conformance.Should, Group: "RT-IMG", Title: "Non-root", Status: conformance.Fail, Reason: "root"},
			{ID: "RT-HTTP-001", Level: conformance.Must, Group: "RT-HTTP", Title: "Health <2xx>", Status: conformance.Fail, Duration: 3 * time.Second, Reason: "never & ever"},
			{ID: "RT-HTTP-002", Level: conformance.Must, Group: "RT-HTTP", Title: "Invoke", Status: conformance.Skip, Reason: "not reached"},
		},
	}
}

// The JSON form is for tools: its field names and shape must not drift.
func TestReportJSONIsStable(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"schema": 1.0, "spec_version": "0.1.0", "image": "img:1", "mode": "HTTP", "level": "SHOULD",
		"started": "2026-11-27T10:00:00Z", "duration_ms": 4200.0, "conforms": false, "runtime": "HTTP",
		"verdict": "DOES NOT CONFORM", "unchecked": []any{"RT-HTTP-002"},
		"summary": map[string]any{"passed": 1.0, "failed": 2.0, "skipped": 1.0, "must_failed": 1.0},
		"results": []any{
			map[string]any{"id": "RT-IMG-001", "level": "MUST", "group": "RT-IMG", "title": "Entrypoint", "status": "pass", "duration_ms": 1500.0, "reason": "ok"},
			map[string]any{"id": "RT-IMG-003", "level": "SHOULD", "group": "RT-IMG", "title": "Non-root", "status": "fail", "duration_ms": 0.0, "reason": "root"},
			map[string]any{"id": "RT-HTTP-001", "level": "MUST", "group": "RT-HTTP", "title": "Health <2xx>", "status": "fail", "duration_ms": 3000.0, "reason": "never & ever"},
			map[string]any{"id": "RT-HTTP-002", "level": "MUST", "group": "RT-HTTP", "title": "Invoke", "status": "skip", "duration_ms": 0.0, "reason": "not reached"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON report (-want +got):\n%s", diff)
	}
}

func TestReportJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	type testcase struct {
		Name      string `xml:"name,attr"`
		Classname string `xml:"classname,attr"`
		Failure   *struct {
			Message string `xml:"message,attr"`
			Type    string `xml:"type,attr"`
		} `xml:"failure"`
		Skipped *struct {
			Message string `xml:"message,attr"`
		} `xml:"skipped"`
	}
	var doc struct {
		XMLName  xml.Name
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name     string     `xml:"name,attr"`
			Tests    int        `xml:"tests,attr"`
			Failures int        `xml:"failures,attr"`
			Skipped  int        `xml:"skipped,attr"`
			Cases    []testcase `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if doc.XMLName.Local != "testsuites" || doc.Tests != 4 || doc.Failures != 2 || doc.Skipped != 1 {
		t.Errorf("testsuites: %+v", doc)
	}
	type suite struct {
		name                     string
		tests, failures, skipped int
	}
	var suites []suite
	for _, s := range doc.Suites {
		suites = append(suites, suite{s.Name, s.Tests, s.Failures, s.Skipped})
	}
	// Without the parsed spec at hand a group is named by its id.
	if diff := cmp.Diff([]suite{{"RT-IMG", 2, 1, 0}, {"RT-HTTP", 2, 1, 1}}, suites, cmp.AllowUnexported(suite{})); diff != "" {
		t.Errorf("suites (-want +got):\n%s", diff)
	}
	c := doc.Suites[1].Cases[0]
	if c.Name != "RT-HTTP-001 [MUST] Health <2xx>" || c.Classname != "conformance.RT-HTTP" || c.Failure == nil ||
		c.Failure.Message != "never & ever" || c.Failure.Type != "MUST" {
		t.Errorf("failed case: %+v", c)
	}
	if s := doc.Suites[1].Cases[1].Skipped; s == nil || s.Message != "not reached" {
		t.Errorf("skipped case: %+v", doc.Suites[1].Cases[1])
	}
}

func TestReportText(t *testing.T) {
	var b bytes.Buffer
	sampleReport().WriteText(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"conformance 0.1.0: img:1 (mode HTTP, level SHOULD)",
		"RT-IMG-001   MUST    PASS    1.5s  ok",
		"RT-IMG-003   SHOULD  FAIL    0.0s  root",
		"RT-HTTP-001  MUST    FAIL    3.0s  never & ever",
		"RT-HTTP-002  MUST    SKIP    0.0s  not reached",
		"not checked: 1 MUST requirement(s) (RT-HTTP-002); a verdict needs every one (see their reasons)",
		"1 passed, 2 failed, 1 skipped (1 MUST failed) in 4.2s: img:1 DOES NOT CONFORM",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("text report (-want +got):\n%s", diff)
	}
}

// A run where no MUST failed but one was not checked does not conform: it
// is NOT VERIFIED, and says which requirement was not checked.
func TestReportUncheckedIsNotVerified(t *testing.T) {
	rep := sampleReport()
	rep.Mode, rep.Runtime = "WARM", "STDIO"
	rep.Results = []conformance.Result{
		{ID: "RT-IMG-001", Level: conformance.Must, Group: "RT-IMG", Status: conformance.Pass, Reason: "ok"},
		{ID: "RT-FN-001", Level: conformance.Must, Group: "RT-FN", Status: conformance.Skip, Reason: "no expected output given"},
		{ID: "RT-ERR-002", Level: conformance.Should, Group: "RT-ERR", Status: conformance.Skip, Reason: "no bad payload given"},
	}
	if rep.Conforms() || rep.Verdict() != "NOT VERIFIED" {
		t.Errorf("conforms %v, verdict %q; want false, NOT VERIFIED", rep.Conforms(), rep.Verdict())
	}
	var b bytes.Buffer
	rep.WriteText(&b)
	for _, want := range []string{"(mode WARM, STDIO per invocation, level SHOULD)", "not checked: 1 MUST requirement(s) (RT-FN-001)", "img:1 NOT VERIFIED"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the text report does not say %q:\n%s", want, b.String())
		}
	}
	rep.Results[1].Status = conformance.Pass
	if !rep.Conforms() || rep.Verdict() != "CONFORMS" {
		t.Errorf("with every MUST checked: conforms %v, verdict %q", rep.Conforms(), rep.Verdict())
	}
}

// Outputs are compared as JSON values: numbers by value, keys in any order.
func TestDiffJSONComparesValues(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		equal     bool
	}{
		{`{"avg":5}`, `{"avg":5.0}`, true},
		{`{"n":100}`, `{"n":1e2}`, true},
		{`{"a":1,"b":[0.5,2]}`, ` { "b" : [5e-1, 2.00], "a" : 1.0 } `, true},
		{`{"avg":5}`, `{"avg":5.01}`, false},
		{`{"n":"5"}`, `{"n":5}`, false},
		{`12345678901234567890`, `12345678901234567891`, false},
	} {
		diff, err := conformance.DiffJSON([]byte(tc.want), []byte(tc.got))
		if err != nil {
			t.Fatal(err)
		}
		if (diff == "") != tc.equal {
			t.Errorf("DiffJSON(%s, %s) = %q, want equal=%v", tc.want, tc.got, diff, tc.equal)
		}
	}
}

// A callback body is a result only when it says "success"; a body without
// it (an SDK's own report) is malformed, not "failed, no error".
func TestValidateResult(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string // "" valid, else part of the error
	}{
		{`{"success":true,"output":{"x":1},"error":null}`, ""},
		{`{"success":false,"output":null,"error":{"code":"FUNCTION_ERROR","message":"boom"}}`, ""},
		{`{"output":{"x":1}}`, `no "success" field`},
		{`{"success":"yes","output":1}`, `not true or false`},
		{`{"success":false,"output":null,"error":null}`, `without "error"`},
		{`[1,2]`, `not a JSON object`},
	} {
		_, err := conformance.ValidateResult([]byte(tc.body))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", tc.body, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one saying %q", tc.body, err, tc.want)
		}
	}
}
