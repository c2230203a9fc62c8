package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText prints one line per requirement and a summary; when MUST
// requirements were not checked, it names them and why.
func (r *Report) WriteText(w io.Writer) {
	mode := r.Mode
	if r.Mode == "WARM" && r.Runtime != "" && r.Runtime != "HTTP" {
		mode += ", " + r.Runtime + " per invocation"
	}
	fmt.Fprintf(w, "conformance %s: %s (mode %s, level %s)\n", r.SpecVersion, r.Image, mode, r.Level)
	width := 0
	for _, res := range r.Results {
		width = max(width, len(res.ID))
	}
	for _, res := range r.Results {
		fmt.Fprintf(w, "%-*s  %-6s  %-4s  %6s  %s\n", width, res.ID, res.Level, strings.ToUpper(string(res.Status)),
			seconds(res.Duration), res.Reason)
	}
	p, f, s, mf := r.Counts()
	if un := r.Unchecked(); len(un) > 0 {
		var ids []string
		for _, res := range un {
			ids = append(ids, res.ID)
		}
		fmt.Fprintf(w, "not checked: %d MUST requirement(s) (%s); a verdict needs every one (see their reasons)\n", len(un), strings.Join(ids, ", "))
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped (%d MUST failed) in %s: %s %s\n", p, f, s, mf, seconds(r.Duration), r.Image, r.Verdict())
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// jsonReport is the stable JSON form of a report (schema version 1).
type jsonReport struct {
	Schema      int          `json:"schema"`
	SpecVersion string       `json:"spec_version"`
	Image       string       `json:"image"`
	Mode        string       `json:"mode"`
	Runtime     string       `json:"runtime"`
	Level       Level        `json:"level"`
	Started     string       `json:"started"`
	DurationMs  int64        `json:"duration_ms"`
	Conforms    bool         `json:"conforms"`
	Verdict     string       `json:"verdict"`
	Unchecked   []string     `json:"unchecked"`
	Summary     jsonSummary  `json:"summary"`
	Results     []jsonResult `json:"results"`
}

type jsonSummary struct {
	Passed     int `json:"passed"`
	Failed     int `json:"failed"`
	Skipped    int `json:"skipped"`
	MustFailed int `json:"must_failed"`
}

type jsonResult struct {
	ID         string `json:"id"`
	Level      Level  `json:"level"`
	Group      string `json:"group"`
	Title      string `json:"title"`
	Status     Status `json:"status"`
	DurationMs int64  `json:"duration_ms"`
	Reason     string `json:"reason"`
}

// WriteJSON writes the report as JSON: stable field names (fields are only
// ever added), results in the spec's order, durations in milliseconds.
func (r *Report) WriteJSON(w io.Writer) error {
	p, f, s, mf := r.Counts()
	out := jsonReport{
		Schema: 1, SpecVersion: r.SpecVersion, Image: r.Image, Mode: r.Mode, Runtime: r.Runtime, Level: r.Level,
		Started:    r.Started.UTC().Format(time.RFC3339Nano),
		DurationMs: r.Duration.Milliseconds(), Conforms: r.Conforms(), Verdict: r.Verdict(), Unchecked: []string{},
		Summary: jsonSummary{Passed: p, Failed: f, Skipped: s, MustFailed: mf},
		Results: []jsonResult{},
	}
	for _, res := range r.Unchecked() {
		out.Unchecked = append(out.Unchecked, res.ID)
	}
	for _, res := range r.Results {
		out.Results = append(out.Results, jsonResult{ID: res.ID, Level: res.Level, Group: res.Group, Title: res.Title,
			Status: res.Status, DurationMs: res.Duration.Milliseconds(), Reason: res.Reason})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// JUnit XML, the form CI systems read: one <testsuite> per group.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML with one <testsuite> per
// requirement group; a failed requirement is a <failure> whatever its
// level (the level is in the test name and the failure type).
func (r *Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "conformance " + r.Image, Time: secs(r.Duration)}
	index := map[string]int{}
	times := map[int]time.Duration{}
	for _, res := range r.Results {
		i, ok := index[res.Group]
		if !ok {
			title := res.Group
			if r.spec != nil {
				title = res.Group + ": " + r.spec.GroupTitle(res.Group)
			}
			out.Suites = append(out.Suites, junitSuite{
				Name: title, Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
				Properties: []junitProperty{{"image", r.Image}, {"mode", r.Mode}, {"spec_version", r.SpecVersion}},
			})
			i = len(out.Suites) - 1
			index[res.Group] = i
		}
		s := &out.Suites[i]
		c := junitCase{
			Name:      fmt.Sprintf("%s [%s] %s", res.ID, res.Level, res.Title),
			Classname: "conformance." + res.Group,
			Time:      secs(res.Duration),
		}
		switch res.Status {
		case Fail:
			c.Failure = &junitMessage{Message: res.Reason, Type: string(res.Level), Text: res.Reason}
			s.Failures++
			out.Failures++
		case Skip:
			c.Skipped = &junitMessage{Message: res.Reason}
			s.Skipped++
			out.Skipped++
		default:
			c.SystemOut = res.Reason
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
		out.Tests++
		// Requirements share container runs: a group takes as long as its longest.
		times[i] = max(times[i], res.Duration)
		s.Time = secs(times[i])
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
