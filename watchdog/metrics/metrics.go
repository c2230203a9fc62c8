// Package metrics holds the server mode's Prometheus metrics. The names and
// labels of the first four match the upstream nanofaas watchdog, so existing
// dashboards keep working:
//
//	watchdog_invocations_total{function,mode,success}   counter
//	watchdog_invocation_duration_seconds{function,mode}  histogram
//	watchdog_invocations_in_flight{function}             gauge
//	watchdog_timeouts_total{function,mode}               counter
//
// and these are what an operator needs beyond them:
//
//	watchdog_runtime_restarts_total{function,reason}     counter
//	watchdog_callback_failures_total{function}           counter
//	watchdog_rejected_requests_total{function,code}      counter
//	watchdog_orphans_reaped_total{function}              counter
//
// Every series is created up front, so recording an invocation is a few
// atomic operations and no map look-up or allocation.
package metrics

import (
	"io"
	"strings"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// Restart reasons, the values of the reason label.
const (
	// RestartExited: the runtime process exited or was killed.
	RestartExited = "exited"
	// RestartTimeout: an invocation timed out, leaving the runtime in an unknown state.
	RestartTimeout = "timeout"
	// RestartMaxInvocations: the runtime served WARM_MAX_INVOCATIONS invocations.
	RestartMaxInvocations = "max_invocations"
	// RestartStartFailed: the previous start failed; this is another attempt.
	RestartStartFailed = "start_failed"
)

// RestartReasons lists the values of the reason label.
var RestartReasons = []string{RestartExited, RestartTimeout, RestartMaxInvocations, RestartStartFailed}

// RejectCodes lists the values of the code label of rejected requests.
var RejectCodes = []string{"BAD_REQUEST", "UNAUTHORIZED", "PAYLOAD_TOO_LARGE", "BUSY", "SHUTTING_DOWN"}

// DurationBuckets are the upper bounds of the duration histogram, in
// seconds: fine below a millisecond for warm runtimes, up to a minute.
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics are the server mode's metrics.
type Metrics struct {
	set *vm.Set

	succeeded, failed *vm.Counter
	duration          *vm.PrometheusHistogram
	inFlight          *vm.Gauge
	timeouts          *vm.Counter
	restarts          map[string]*vm.Counter
	rejected          map[string]*vm.Counter
	callbackFailures  *vm.Counter
	orphans           *vm.Counter
	orphansReaped     func() uint64
}

// New creates the metrics for a function (FUNCTION_NAME) served with mode
// (EXECUTION_MODE). orphansReaped, when not nil, is read at every scrape.
func New(function, mode string, orphansReaped func() uint64) *Metrics {
	// Metadata (# TYPE) lets Prometheus tell counters from gauges.
	vm.ExposeMetadata(true)
	fn := `function="` + escape(function) + `"`
	fnMode := fn + `,mode="` + escape(mode) + `"`
	s := vm.NewSet()
	m := &Metrics{
		set:              s,
		succeeded:        s.NewCounter(`watchdog_invocations_total{` + fnMode + `,success="true"}`),
		failed:           s.NewCounter(`watchdog_invocations_total{` + fnMode + `,success="false"}`),
		duration:         s.NewPrometheusHistogramExt(`watchdog_invocation_duration_seconds{`+fnMode+`}`, DurationBuckets),
		inFlight:         s.NewGauge(`watchdog_invocations_in_flight{`+fn+`}`, nil),
		timeouts:         s.NewCounter(`watchdog_timeouts_total{` + fnMode + `}`),
		restarts:         map[string]*vm.Counter{},
		rejected:         map[string]*vm.Counter{},
		callbackFailures: s.NewCounter(`watchdog_callback_failures_total{` + fn + `}`),
		orphans:          s.NewCounter(`watchdog_orphans_reaped_total{` + fn + `}`),
		orphansReaped:    orphansReaped,
	}
	for _, r := range RestartReasons {
		m.restarts[r] = s.NewCounter(`watchdog_runtime_restarts_total{` + fn + `,reason="` + r + `"}`)
	}
	for _, c := range RejectCodes {
		m.rejected[c] = s.NewCounter(`watchdog_rejected_requests_total{` + fn + `,code="` + c + `"}`)
	}
	return m
}

// Started records that an invocation began.
func (m *Metrics) Started() { m.inFlight.Set(1) }

// Finished records an invocation's outcome and wall time.
func (m *Metrics) Finished(success, timedOut bool, took time.Duration) {
	m.inFlight.Set(0)
	if success {
		m.succeeded.Inc()
	} else {
		m.failed.Inc()
	}
	if timedOut {
		m.timeouts.Inc()
	}
	m.duration.Update(took.Seconds())
}

// RuntimeRestarted records a restart of the warm runtime for reason (one of RestartReasons).
func (m *Metrics) RuntimeRestarted(reason string) {
	if c := m.restarts[reason]; c != nil {
		c.Inc()
	}
}

// Rejected records a request refused with code (one of RejectCodes).
func (m *Metrics) Rejected(code string) {
	if c := m.rejected[code]; c != nil {
		c.Inc()
	}
}

// CallbackFailed records a result whose callback could not be delivered.
func (m *Metrics) CallbackFailed() { m.callbackFailures.Inc() }

// WritePrometheus writes every metric in the Prometheus text format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	if m.orphansReaped != nil {
		m.orphans.Set(m.orphansReaped())
	}
	m.set.WritePrometheus(w)
}

// ContentType is the media type of WritePrometheus's output.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// escape makes s a Prometheus label value (between double quotes).
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
