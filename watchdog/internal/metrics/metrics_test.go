package metrics

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func scrape(m *Metrics) string {
	var b bytes.Buffer
	m.WritePrometheus(&b)
	return b.String()
}

func TestRecordsInvocations(t *testing.T) {
	orphans := uint64(0)
	m := New("fn", "WARM", func() uint64 { return orphans })
	m.Started()
	if out := scrape(m); !strings.Contains(out, `watchdog_invocations_in_flight{function="fn"} 1`+"\n") {
		t.Errorf("in flight not 1 during an invocation:\n%s", out)
	}
	m.Finished(true, false, 3*time.Millisecond)
	m.Started()
	m.Finished(false, true, 2*time.Second)
	m.RuntimeRestarted(RestartTimeout)
	m.Rejected("BUSY")
	m.CallbackFailed()
	orphans = 7
	out := scrape(m)
	for _, line := range []string{
		`# TYPE watchdog_invocations_total counter`,
		`watchdog_invocations_total{function="fn",mode="WARM",success="true"} 1`,
		`watchdog_invocations_total{function="fn",mode="WARM",success="false"} 1`,
		`watchdog_timeouts_total{function="fn",mode="WARM"} 1`,
		`watchdog_invocations_in_flight{function="fn"} 0`,
		`# TYPE watchdog_invocation_duration_seconds histogram`,
		`watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="0.005"} 1`,
		`watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="2.5"} 2`,
		`watchdog_invocation_duration_seconds_count{function="fn",mode="WARM"} 2`,
		`watchdog_runtime_restarts_total{function="fn",reason="timeout"} 1`,
		`watchdog_runtime_restarts_total{function="fn",reason="exited"} 0`,
		`watchdog_rejected_requests_total{function="fn",code="BUSY"} 1`,
		`watchdog_callback_failures_total{function="fn"} 1`,
		`watchdog_orphans_reaped_total{function="fn"} 7`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("missing %s in:\n%s", line, out)
		}
	}
}

func TestFunctionNameIsEscaped(t *testing.T) {
	m := New("we\"ird\\name\nx", "STDIO", nil)
	out := scrape(m)
	if !strings.Contains(out, `watchdog_invocations_in_flight{function="we\"ird\\name\nx"} 0`+"\n") {
		t.Errorf("label not escaped:\n%s", out)
	}
}
