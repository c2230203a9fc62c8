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
// must fail exactly the requirements that defect breaks; the conforming
// cases among them (floats in the output, WARM=true with STDIO) must
// conform. The runner runs each image as the CLI would, with an expected
// output and a bad payload.
func TestRunnerFailsNonconformingImages(t *testing.T) {
	d := requireDocker(t)
	for variant, fx := range nonconforming {
		t.Run(variant, func(t *testing.T) {
			t.Parallel()
			image := nonconformingImage(t, d, variant)
			rep := runFixture(t, d, image, fx)
			failed := failedIDs(rep)
			want := append([]string{}, fx.failed...)
			slices.Sort(want)
			if diff := cmp.Diff(want, failed); diff != "" {
				t.Errorf("failed requirements (-want +got):\n%s", diff)
			}
			if len(want) > 0 && rep.Conforms() {
				t.Errorf("the report says the image conforms; it has failed MUST requirements %v", failed)
			}
			if len(want) == 0 && !rep.Conforms() {
				t.Errorf("a conforming case does not conform: verdict %s, unchecked %v", rep.Verdict(), rep.Unchecked())
			}
		})
	}
}

// runFixture runs the suite on a fixture image as the CLI would.
func runFixture(t *testing.T, d *conformance.Docker, image string, fx fixture) *conformance.Report {
	t.Helper()
	expect := `{"input":"HELLO"}`
	if fx.expect != "" {
		expect = fx.expect
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := conformance.Run(ctx, conformance.Options{
		Image:      image,
		Expect:     json.RawMessage(expect),
		BadPayload: json.RawMessage(badPayload),
		Timeout:    10 * time.Second,
		Docker:     d,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", summary(rep))
	return rep
}

func failedIDs(rep *conformance.Report) []string {
	failed := []string{}
	for _, res := range rep.Results {
		if res.Status == conformance.Fail {
			failed = append(failed, res.ID)
		}
	}
	slices.Sort(failed)
	return failed
}

// TestContainerVerdictsAreDeterministic runs the suite 10 times on a racy
// image: a runtime that, like the SDKs that report their own result, posts
// its own callback at a random moment, before or after the watchdog's. The
// verdict is the same every time, and names the same requirement: the
// watchdog's callback is the one judged, the runtime's is RT-CB-001's
// finding.
//
// Covers: RT-CB-001
func TestContainerVerdictsAreDeterministic(t *testing.T) {
	d := requireDocker(t)
	image := nonconformingImage(t, d, "http-self-callback")
	for i := range 10 {
		rep := runFixture(t, d, image, fixture{})
		if got := failedIDs(rep); rep.Verdict() != "DOES NOT CONFORM" || !slices.Equal(got, []string{"RT-CB-001"}) {
			t.Errorf("run %d: verdict %s, failed %v; want DOES NOT CONFORM, failed [RT-CB-001] every time", i+1, rep.Verdict(), got)
		}
	}
}

// TestContainerOtherWatchdog builds fixture images around a different
// watchdog, a small stand-in (fixtures/nonconforming/standin-watchdog) that
// behaves as the contract says but logs plain text and words its errors its
// own way, and shows that every runtime (RT-*) verdict is the one the same
// image gets with our watchdog: the runtime requirements are judged from
// what is observable outside the container, not from our watchdog's words.
//
// Covers: RT-PID1-001, RT-ERR-001, RT-ERR-002, RT-SIG-001, RT-FN-001
func TestContainerOtherWatchdog(t *testing.T) {
	d := requireDocker(t)
	for _, variant := range []string{"http-ignores-sigterm", "http-inband-error", "stdio-floats", "wrapped-entrypoint", "stdio-stdout-log"} {
		t.Run(variant, func(t *testing.T) {
			t.Parallel()
			fx := nonconforming[variant]
			ours := runFixture(t, d, nonconformingImage(t, d, variant), fx)
			theirs := runFixture(t, d, standinImage(t, variant), fx)
			verdicts := func(rep *conformance.Report) map[string]conformance.Status {
				out := map[string]conformance.Status{}
				for _, r := range rep.Results {
					out[r.ID] = r.Status
				}
				return out
			}
			if diff := cmp.Diff(verdicts(ours), verdicts(theirs)); diff != "" {
				t.Errorf("RT verdicts with our watchdog (-) and the stand-in (+) differ:\n%s", diff)
			}
			if ours.Verdict() != theirs.Verdict() {
				t.Errorf("verdict %s with our watchdog, %s with the stand-in", ours.Verdict(), theirs.Verdict())
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
		status, stdout, stderr := run("run", "--function", ex.Path, "--image", ex.Image, "--mode", ex.Mode,
			"--bad-payload", badPayload, "--json", jsonFile, "--junit", junitFile)
		if status != conformance.ExitConforms {
			t.Fatalf("exit status %d, want %d", status, conformance.ExitConforms)
		}
		if !strings.Contains(stdout, "0 failed") || !strings.Contains(stdout, ": "+ex.Image+" CONFORMS") {
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
		status, stdout, _ := run("run", "--image", bad, "--mode", "STDIO", "-q", "--data", `{"input":"hello"}`,
			"--expect", `{"input":"HELLO"}`, "--bad-payload", badPayload, "--json", jsonFile, "--junit", junitFile)
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

	// Without an expected output or a bad payload, RT-FN-001 and RT-ERR-001
	// are not checked: the image is not shown to conform (exit 3), unless
	// the user accepts it.
	t.Run("unchecked MUST requirements", func(t *testing.T) {
		status, stdout, stderr := run("run", "--image", ex.Image, "-q", "--data", string(ex.Example.Payload))
		if status != conformance.ExitUnchecked || !strings.Contains(stdout, "NOT VERIFIED") ||
			!regexpMatch(`not checked: 2 MUST requirement\(s\) \(RT-FN-001, RT-ERR-001\)`, stdout) || !strings.Contains(stderr, "--allow-unchecked") {
			t.Errorf("exit status %d, want %d, and the output naming RT-FN-001 and RT-ERR-001 as not checked", status, conformance.ExitUnchecked)
		}
		status, _, _ = run("run", "--image", ex.Image, "-q", "--allow-unchecked")
		if status != conformance.ExitConforms {
			t.Errorf("with --allow-unchecked: exit status %d, want %d", status, conformance.ExitConforms)
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
