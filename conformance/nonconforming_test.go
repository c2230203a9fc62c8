package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"nanofaas.dev/conformance"
)

// TestRunnerFailsNonconformingImages proves the suite can fail: each image of
// fixtures/nonconforming has one defect (a few have two), and the runner
// must fail exactly the requirements that defect breaks. The runner runs
// each image as the CLI would, with an expected output and a bad payload.
func TestRunnerFailsNonconformingImages(t *testing.T) {
	d := requireDocker(t)
	for variant, wantFailed := range nonconforming {
		t.Run(variant, func(t *testing.T) {
			t.Parallel()
			image := nonconformingImage(t, d, variant)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			rep, err := conformance.Run(ctx, conformance.Options{
				Image:      image,
				Expect:     json.RawMessage(`{"input":"HELLO"}`),
				BadPayload: json.RawMessage(badPayload),
				Timeout:    10 * time.Second,
				Docker:     d,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", summary(rep))
			var failed []string
			for _, res := range rep.Results {
				if res.Status == conformance.Fail {
					failed = append(failed, res.ID)
				}
			}
			slices.Sort(failed)
			if diff := cmp.Diff(wantFailed, failed); diff != "" {
				t.Errorf("failed requirements (-want +got):\n%s", diff)
			}
			if rep.Conforms() {
				t.Errorf("the report says the image conforms; it has failed MUST requirements %v", failed)
			}
		})
	}
}

// TestCLIRun runs the conformance command as a user would: against an
// example image it exits 0, against a non-conforming image it exits 1 and
// names the failed requirement; the JSON and JUnit files say the same.
func TestCLIRun(t *testing.T) {
	d := requireDocker(t)
	ex := exampleByDir(t, "go-binary")
	requireImage(t, d, ex.Image)
	bad := nonconformingImage(t, d, "wrapped-entrypoint")
	dir := t.TempDir()

	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		status := conformance.Main(ctx, args, &stdout, &stderr)
		t.Logf("conformance %s: exit %d\n%s%s", strings.Join(args, " "), status, stdout.String(), stderr.String())
		return status, stdout.String(), stderr.String()
	}

	t.Run("conforming example", func(t *testing.T) {
		jsonFile := filepath.Join(dir, "example.json")
		junitFile := filepath.Join(dir, "example.xml")
		status, stdout, stderr := run("run", "--image", ex.Image, "--mode", ex.Mode,
			"--payload", string(ex.Example.Payload), "--expect", string(ex.Example.Output),
			"--bad-payload", badPayload, "--json", jsonFile, "--junit", junitFile)
		if status != conformance.ExitConforms {
			t.Fatalf("exit status %d, want %d", status, conformance.ExitConforms)
		}
		if !strings.Contains(stdout, "0 failed") || !strings.Contains(stdout, "CONFORMS") {
			t.Errorf("the summary line does not say the image conforms:\n%s", stdout)
		}
		if !strings.Contains(stderr, "starting a container") {
			t.Errorf("no progress on stderr:\n%s", stderr)
		}
		rep := readJSONReport(t, jsonFile)
		if !rep.Conforms || rep.Summary.Failed != 0 || rep.Image != ex.Image || rep.Mode != "STDIO" {
			t.Errorf("JSON report: %+v", rep)
		}
		suites := readJUnit(t, junitFile)
		if suites.Failures != 0 || suites.Tests != len(rep.Results) || len(suites.Suites) < 4 {
			t.Errorf("JUnit report: %d tests, %d failures, %d suites; want %d tests, no failure, one suite per group",
				suites.Tests, suites.Failures, len(suites.Suites), len(rep.Results))
		}
	})

	t.Run("non-conforming image", func(t *testing.T) {
		jsonFile := filepath.Join(dir, "bad.json")
		junitFile := filepath.Join(dir, "bad.xml")
		status, stdout, _ := run("run", "--image", bad, "--mode", "STDIO", "-q",
			"--expect", `{"input":"HELLO"}`, "--json", jsonFile, "--junit", junitFile)
		if status != conformance.ExitNonConforming {
			t.Fatalf("exit status %d, want %d", status, conformance.ExitNonConforming)
		}
		if !regexpMatch(`(?m)^RT-PID1-001\s+MUST\s+FAIL\s`, stdout) || !strings.Contains(stdout, "DOES NOT CONFORM") {
			t.Errorf("the output does not show RT-PID1-001 failing:\n%s", stdout)
		}
		rep := readJSONReport(t, jsonFile)
		var failed []string
		for _, r := range rep.Results {
			if r.Status == "fail" {
				failed = append(failed, r.ID)
			}
		}
		if rep.Conforms || rep.Summary.MustFailed != 1 || !slices.Equal(failed, []string{"RT-PID1-001"}) {
			t.Errorf("JSON report: conforms=%v must_failed=%d failed=%v", rep.Conforms, rep.Summary.MustFailed, failed)
		}
		suites := readJUnit(t, junitFile)
		var failures []string
		for _, s := range suites.Suites {
			for _, c := range s.Cases {
				if c.Failure != nil {
					failures = append(failures, s.Name+" / "+c.Name)
				}
			}
		}
		if len(failures) != 1 || !strings.Contains(failures[0], "RT-PID1-001") || !strings.HasPrefix(failures[0], "RT-PID1:") {
			t.Errorf("JUnit failures: %v, want RT-PID1-001 in the RT-PID1 suite", failures)
		}
	})

	t.Run("missing image", func(t *testing.T) {
		status, _, stderr := run("run", "--image", "nanofaas/no-such-image-"+randomID("x")+":latest", "-q")
		if status != conformance.ExitUsage || !strings.Contains(stderr, "not found") {
			t.Errorf("exit status %d, stderr %q; want %d and a message that the image is not found", status, stderr, conformance.ExitUsage)
		}
	})
}

type jsonReport struct {
	Schema      int    `json:"schema"`
	SpecVersion string `json:"spec_version"`
	Image       string `json:"image"`
	Mode        string `json:"mode"`
	Conforms    bool   `json:"conforms"`
	Summary     struct {
		Passed, Failed, Skipped int
		MustFailed              int `json:"must_failed"`
	} `json:"summary"`
	Results []struct {
		ID     string `json:"id"`
		Level  string `json:"level"`
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"results"`
}

func readJSONReport(t *testing.T, name string) jsonReport {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var r jsonReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if r.Schema != 1 || r.SpecVersion != conformance.LoadSpec().Version {
		t.Errorf("%s: schema %d, spec version %q", name, r.Schema, r.SpecVersion)
	}
	return r
}

type junitXML struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Suites   []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string    `xml:"name,attr"`
			Failure *struct{} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, name string) junitXML {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var j junitXML
	if err := xml.Unmarshal(data, &j); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return j
}
