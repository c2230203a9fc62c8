package metrics

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// vmExposition is what github.com/VictoriaMetrics/metrics v1.45.0 wrote for
// the sequence in TestExpositionIsUnchanged, when the watchdog used it:
// the order of families and series, the metadata lines, and the number
// formats are what scrapers and dashboards have seen since. One series was
// added later by hand, where VictoriaMetrics' sort puts it:
// code="TOO_MANY_CONNECTIONS"; later the queue's: code="QUEUE_TIMEOUT",
// watchdog_queue_depth and watchdog_queue_wait_seconds; and one family,
// where its name sorts: watchdog_log_lines_dropped_total.
const vmExposition = `# HELP watchdog_callback_failures_total
# TYPE watchdog_callback_failures_total counter
watchdog_callback_failures_total{function="fn"} 1
# HELP watchdog_invocation_duration_seconds
# TYPE watchdog_invocation_duration_seconds histogram
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="0.0005"} 1
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="0.001"} 2
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="0.0025"} 2
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="0.005"} 4
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="0.01"} 4
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="0.025"} 4
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="0.05"} 4
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="0.1"} 4
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="0.25"} 4
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="0.5"} 4
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="1"} 4
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="2.5"} 5
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="5"} 5
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="10"} 5
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="30"} 5
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="60"} 5
watchdog_invocation_duration_seconds_bucket{function="fn",mode="WARM",le="+Inf"} 6
watchdog_invocation_duration_seconds_sum{function="fn",mode="WARM"} 102.0093
watchdog_invocation_duration_seconds_count{function="fn",mode="WARM"} 6
# HELP watchdog_invocations_in_flight
# TYPE watchdog_invocations_in_flight gauge
watchdog_invocations_in_flight{function="fn"} 1
# HELP watchdog_invocations_total
# TYPE watchdog_invocations_total counter
watchdog_invocations_total{function="fn",mode="WARM",success="false"} 1
watchdog_invocations_total{function="fn",mode="WARM",success="true"} 5
# HELP watchdog_log_lines_dropped_total
# TYPE watchdog_log_lines_dropped_total counter
watchdog_log_lines_dropped_total{function="fn"} 0
# HELP watchdog_orphans_reaped_total
# TYPE watchdog_orphans_reaped_total counter
watchdog_orphans_reaped_total{function="fn"} 3
# HELP watchdog_queue_depth
# TYPE watchdog_queue_depth gauge
watchdog_queue_depth{function="fn"} 0
# HELP watchdog_queue_wait_seconds
# TYPE watchdog_queue_wait_seconds histogram
watchdog_queue_wait_seconds_bucket{function="fn",le="0.0005"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="0.001"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="0.0025"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="0.005"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="0.01"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="0.025"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="0.05"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="0.1"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="0.25"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="0.5"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="1"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="2.5"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="5"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="10"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="30"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="60"} 0
watchdog_queue_wait_seconds_bucket{function="fn",le="+Inf"} 0
watchdog_queue_wait_seconds_sum{function="fn"} 0
watchdog_queue_wait_seconds_count{function="fn"} 0
# HELP watchdog_rejected_requests_total
# TYPE watchdog_rejected_requests_total counter
watchdog_rejected_requests_total{function="fn",code="BAD_REQUEST"} 0
watchdog_rejected_requests_total{function="fn",code="BUSY"} 1
watchdog_rejected_requests_total{function="fn",code="PAYLOAD_TOO_LARGE"} 0
watchdog_rejected_requests_total{function="fn",code="QUEUE_TIMEOUT"} 0
watchdog_rejected_requests_total{function="fn",code="SHUTTING_DOWN"} 0
watchdog_rejected_requests_total{function="fn",code="TOO_MANY_CONNECTIONS"} 0
watchdog_rejected_requests_total{function="fn",code="UNAUTHORIZED"} 0
# HELP watchdog_runtime_restarts_total
# TYPE watchdog_runtime_restarts_total counter
watchdog_runtime_restarts_total{function="fn",reason="exited"} 0
watchdog_runtime_restarts_total{function="fn",reason="max_invocations"} 0
watchdog_runtime_restarts_total{function="fn",reason="protocol_error"} 0
watchdog_runtime_restarts_total{function="fn",reason="start_failed"} 0
watchdog_runtime_restarts_total{function="fn",reason="timeout"} 1
# HELP watchdog_timeouts_total
# TYPE watchdog_timeouts_total counter
watchdog_timeouts_total{function="fn",mode="WARM"} 1
`

func TestExpositionIsUnchanged(t *testing.T) {
	m := New("fn", "WARM", func() uint64 { return 3 })
	m.Started()
	m.Finished(true, false, 300*time.Microsecond)
	m.Started()
	m.Finished(true, false, 3*time.Millisecond)
	m.Started()
	m.Finished(false, true, 2*time.Second)
	m.Started()
	m.Finished(true, false, 100*time.Second)
	m.Started()
	m.Finished(true, false, 5*time.Millisecond)
	m.Started()
	m.Finished(true, false, time.Millisecond)
	m.RuntimeRestarted(RestartTimeout)
	m.Rejected("BUSY")
	m.CallbackFailed()
	m.Started()
	if diff := cmp.Diff(vmExposition, scrape(m)); diff != "" {
		t.Errorf("exposition changed (-was +now):\n%s", diff)
	}
}

func TestHistogramIgnoresNaNAndNegative(t *testing.T) {
	h := &histogram{bounds: DurationBuckets, counts: make([]uint64, len(DurationBuckets))}
	h.update(math.NaN())
	h.update(-1)
	h.update(0)
	if h.count != 1 || h.counts[0] != 1 {
		t.Errorf("count %d, first bucket %d; want 1 and 1", h.count, h.counts[0])
	}
}

// The sum is written like fmt's %g (VictoriaMetrics used it), or as a
// whole number when it is one.
func TestSumFormatMatchesPercentG(t *testing.T) {
	for _, v := range []float64{0, 1, 102.0093, 3e-05, 0.0001, 1e21, 123456789.123, 1.5e-9, 7, 2.5} {
		h := &histogram{bounds: []float64{1}, counts: make([]uint64, 1)}
		h.update(v)
		got := string(h.appendTo(nil, "x", ""))
		want := fmt.Sprintf("%g", v)
		if float64(int64(v)) == v {
			want = strconv.FormatInt(int64(v), 10)
		}
		if !bytes.Contains([]byte(got), []byte("x_sum "+want+"\n")) {
			t.Errorf("sum %v: got\n%s\nwant x_sum %s", v, got, want)
		}
	}
}
