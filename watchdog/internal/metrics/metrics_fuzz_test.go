package metrics

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzNew checks the metrics for any FUNCTION_NAME (an operator's free
// text that becomes a label value): creating them never panics, and the
// exposition has every series, one per line, with the name as the label.
func FuzzNew(f *testing.F) {
	for _, s := range []string{"unknown", "my-fn", `quo"te`, `back\slash`, "new\nline", "tab\tcr\r", "}", "ünï", "\xff", "a=\"b\",c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, function string) {
		m := New(function, "WARM", nil)
		m.Started()
		m.Finished(true, false, 0)
		m.Rejected("BUSY")
		var b bytes.Buffer
		m.WritePrometheus(&b)
		out := b.String()
		for _, series := range []string{"watchdog_invocations_total{", "watchdog_invocation_duration_seconds_bucket{",
			"watchdog_invocations_in_flight{", "watchdog_timeouts_total{", "watchdog_rejected_requests_total{"} {
			if !strings.Contains(out, series) {
				t.Fatalf("no %s series for function %q:\n%s", series, function, out)
			}
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if !strings.HasPrefix(line, "watchdog_") && !strings.HasPrefix(line, "# ") {
				t.Fatalf("function %q broke the exposition into line %q", function, line)
			}
		}
	})
}
