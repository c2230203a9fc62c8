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
//	watchdog_queue_depth{function}                       gauge
//	watchdog_queue_wait_seconds{function}                histogram
//	watchdog_log_lines_dropped_total{function}           counter
//
// Every series is created up front, so recording an invocation is a few
// atomic operations (and a short lock for the histogram), with no map
// look-up or allocation.
//
// The exposition is written here rather than with a metrics library: the
// output is the one github.com/VictoriaMetrics/metrics produced (a test pins
// it), without that library's start-up work (it read cgroup and pressure
// files at init, a twentieth of the watchdog's start-up) and binary weight.
package metrics

import (
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
	// RestartProtocolError: a STDIO_PROTOCOL=lines function broke the line
	// protocol (a malformed, second or unsolicited result line, or its
	// result channel closed).
	RestartProtocolError = "protocol_error"
)

// RestartReasons lists the values of the reason label.
var RestartReasons = []string{RestartExited, RestartTimeout, RestartMaxInvocations, RestartStartFailed, RestartProtocolError}

// RejectCodes lists the values of the code label of rejected requests.
var RejectCodes = []string{"BAD_REQUEST", "UNAUTHORIZED", "PAYLOAD_TOO_LARGE", "BUSY", "QUEUE_TIMEOUT", "SHUTTING_DOWN", "TOO_MANY_CONNECTIONS"}

// DurationBuckets are the upper bounds of the duration histogram, in
// seconds: fine below a millisecond for warm runtimes, up to a minute.
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics are the server mode's metrics.
type Metrics struct {
	succeeded, failed *counter
	duration          *histogram
	inFlight          *counter
	timeouts          *counter
	restarts          map[string]*counter
	rejected          map[string]*counter
	callbackFailures  *counter
	orphans           *counter
	orphansReaped     func() uint64
	queueDepth        *counter
	queueWait         *histogram
	queueDepthOf      func() uint64
	logDropped        *counter
	logDroppedFn      func() uint64

	// families are what a scrape writes, in its order.
	families []family
}

// New creates the metrics for a function (FUNCTION_NAME) served with mode
// (EXECUTION_MODE). orphansReaped, when not nil, is read at every scrape.
func New(function, mode string, orphansReaped func() uint64) *Metrics {
	fn := `function="` + escape(function) + `"`
	fnMode := fn + `,mode="` + escape(mode) + `"`
	m := &Metrics{
		restarts:      map[string]*counter{},
		rejected:      map[string]*counter{},
		orphansReaped: orphansReaped,
	}
	fams := map[string]*family{}
	add := func(name, typ, labels string, w writer) {
		f := fams[name]
		if f == nil {
			f = &family{name: name, typ: typ}
			fams[name] = f
		}
		f.series = append(f.series, series{labels: labels, w: w})
	}
	newCounter := func(name, labels string) *counter {
		c := &counter{}
		add(name, "counter", labels, c)
		return c
	}
	m.succeeded = newCounter("watchdog_invocations_total", fnMode+`,success="true"`)
	m.failed = newCounter("watchdog_invocations_total", fnMode+`,success="false"`)
	m.duration = &histogram{bounds: DurationBuckets, counts: make([]uint64, len(DurationBuckets))}
	add("watchdog_invocation_duration_seconds", "histogram", fnMode, m.duration)
	m.inFlight = &counter{}
	add("watchdog_invocations_in_flight", "gauge", fn, m.inFlight)
	m.timeouts = newCounter("watchdog_timeouts_total", fnMode)
	m.callbackFailures = newCounter("watchdog_callback_failures_total", fn)
	m.orphans = newCounter("watchdog_orphans_reaped_total", fn)
	m.queueDepth = &counter{}
	add("watchdog_queue_depth", "gauge", fn, m.queueDepth)
	m.queueWait = &histogram{bounds: DurationBuckets, counts: make([]uint64, len(DurationBuckets))}
	add("watchdog_queue_wait_seconds", "histogram", fn, m.queueWait)
	m.logDropped = newCounter("watchdog_log_lines_dropped_total", fn)
	for _, r := range RestartReasons {
		m.restarts[r] = newCounter("watchdog_runtime_restarts_total", fn+`,reason="`+r+`"`)
	}
	for _, c := range RejectCodes {
		m.rejected[c] = newCounter("watchdog_rejected_requests_total", fn+`,code="`+c+`"`)
	}
	// Families by name, series by their full name: the order of
	// VictoriaMetrics' Set, which dashboards and tests have seen.
	for _, f := range fams {
		slices.SortFunc(f.series, func(a, b series) int {
			return strings.Compare(f.name+"{"+a.labels+"}", f.name+"{"+b.labels+"}")
		})
		m.families = append(m.families, *f)
	}
	slices.SortFunc(m.families, func(a, b family) int { return strings.Compare(a.name, b.name) })
	return m
}

// Started records that an invocation began.
func (m *Metrics) Started() { m.inFlight.Add(1) }

// Finished records an invocation's outcome and wall time.
func (m *Metrics) Finished(success, timedOut bool, took time.Duration) {
	m.inFlight.Add(^uint64(0))
	if success {
		m.succeeded.Inc()
	} else {
		m.failed.Inc()
	}
	if timedOut {
		m.timeouts.Inc()
	}
	m.duration.update(took.Seconds())
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

// QueueWaited records how long a request waited for a slot (0 when one
// was free), whether it got one or not.
func (m *Metrics) QueueWaited(d time.Duration) { m.queueWait.update(d.Seconds()) }

// ReadQueueDepth makes every scrape read the number of requests waiting
// for a slot from depth.
func (m *Metrics) ReadQueueDepth(depth func() uint64) { m.queueDepthOf = depth }

// CallbackFailed records a result whose callback could not be delivered.
func (m *Metrics) CallbackFailed() { m.callbackFailures.Inc() }

// CountLogDropped makes f the source of watchdog_log_lines_dropped_total
// (log records and output lines dropped because nothing read the
// watchdog's output), read at every scrape.
func (m *Metrics) CountLogDropped(f func() uint64) { m.logDroppedFn = f }

// WritePrometheus writes every metric in the Prometheus text format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	if m.logDroppedFn != nil {
		m.logDropped.Store(m.logDroppedFn())
	}
	if m.orphansReaped != nil {
		m.orphans.Store(m.orphansReaped())
	}
	if m.queueDepthOf != nil {
		m.queueDepth.Store(m.queueDepthOf())
	}
	b := make([]byte, 0, 4096)
	for _, f := range m.families {
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, f.typ...)
		b = append(b, '\n')
		for _, s := range f.series {
			b = s.w.appendTo(b, f.name, s.labels)
		}
	}
	_, _ = w.Write(b)
}

// ContentType is the media type of WritePrometheus's output.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// escape makes s a Prometheus label value (between double quotes).
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// family is the series of one metric name.
type family struct {
	name, typ string
	series    []series
}

type series struct {
	labels string
	w      writer
}

// writer appends one series' lines.
type writer interface {
	appendTo(b []byte, name, labels string) []byte
}

// counter is a counter, or a gauge that holds a whole number.
type counter struct{ atomic.Uint64 }

// Inc adds one.
func (c *counter) Inc() { c.Add(1) }

func (c *counter) appendTo(b []byte, name, labels string) []byte {
	b = appendName(b, name, labels)
	b = strconv.AppendUint(b, c.Load(), 10)
	return append(b, '\n')
}

// histogram is a Prometheus histogram with fixed bucket bounds.
type histogram struct {
	bounds []float64
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative
	sum    float64
	count  uint64
}

// update records v; NaN and negative values are ignored.
func (h *histogram) update(v float64) {
	if math.IsNaN(v) || v < 0 {
		return
	}
	i, _ := slices.BinarySearch(h.bounds, v) // the first bound >= v
	h.mu.Lock()
	h.sum += v
	h.count++
	if i < len(h.counts) {
		h.counts[i]++
	}
	h.mu.Unlock()
}

func (h *histogram) appendTo(b []byte, name, labels string) []byte {
	h.mu.Lock()
	counts := slices.Clone(h.counts)
	sum, count := h.sum, h.count
	h.mu.Unlock()
	bucket := name + "_bucket"
	le := labels
	if le != "" {
		le += ","
	}
	var cumulative uint64
	for i, ub := range h.bounds {
		cumulative += counts[i]
		b = appendName(b, bucket, le+`le="`+strconv.FormatFloat(ub, 'g', -1, 64)+`"`)
		b = strconv.AppendUint(b, cumulative, 10)
		b = append(b, '\n')
	}
	b = appendName(b, bucket, le+`le="+Inf"`)
	b = strconv.AppendUint(b, count, 10)
	b = append(b, '\n')
	b = appendName(b, name+"_sum", labels)
	if float64(int64(sum)) == sum {
		b = strconv.AppendInt(b, int64(sum), 10)
	} else {
		b = strconv.AppendFloat(b, sum, 'g', -1, 64)
	}
	b = append(b, '\n')
	b = appendName(b, name+"_count", labels)
	b = strconv.AppendUint(b, count, 10)
	return append(b, '\n')
}

// appendName appends name{labels} and a space.
func appendName(b []byte, name, labels string) []byte {
	b = append(b, name...)
	if labels != "" {
		b = append(b, '{')
		b = append(b, labels...)
		b = append(b, '}')
	}
	return append(b, ' ')
}
