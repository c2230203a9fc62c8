package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"nanofaas.dev/watchdog/result"
)

// Statuses that are not the watchdog's error codes.
const (
	StatusSuccess = "success"
	// StatusConfigError: the function or the watchdog's configuration is
	// bad (or Docker is unusable); nothing ran.
	StatusConfigError = "CONFIG_ERROR"
	// StatusWatchdogError: the watchdog ended without reporting a result.
	StatusWatchdogError = "WATCHDOG_ERROR"
	// StatusTimeout is the watchdog's code for an invocation that ran out of time.
	StatusTimeout = "TIMEOUT"
)

// Report describes one execution: the REPORT line of invoke and the line
// serve logs for every completed execution.
type Report struct {
	ExecutionID string
	Function    string
	// Status is "success", a watchdog error code (FUNCTION_ERROR, TIMEOUT,
	// SPAWN_ERROR, STARTUP_ERROR) or CONFIG_ERROR / WATCHDOG_ERROR.
	Status string
	// TotalMs is the wall time from starting the watchdog (or, warm, from
	// sending the invocation) until its result arrived.
	TotalMs int64
	// DurationMs is the invocation's duration as the watchdog measured it
	// (-1 when there is no result).
	DurationMs int64
	// InitMs = TotalMs - DurationMs: the watchdog's (and container's) start,
	// an HTTP runtime's start until healthy, and the callback's delivery.
	InitMs int64
	// MaxRSSKB is the function's own peak memory, in KiB: on this machine
	// the largest VmHWM of a single process below the watchdog (the
	// function and what it started, never the watchdog or the emulator),
	// sampled while they run; with Docker the container's cgroup peak. -1
	// when it could not be measured (e.g. the function exited before the
	// first sample).
	MaxRSSKB int64
	// MaxRSSMethod says how MaxRSSKB was measured: MethodSampled,
	// MethodCgroup, or "" when it was not.
	MaxRSSMethod string
	// ExitCode is the function process's exit code, when it exited by itself.
	ExitCode *int
	// Runtime is "host" or "docker".
	Runtime string
	// Warm tells a run in a warm watchdog.
	Warm bool
}

// Line is the report as one line of key=value fields.
func (r Report) Line() string {
	return "REPORT " + r.fields()
}

// fields are the report's key=value pairs.
func (r Report) fields() string {
	return fmt.Sprintf("execution_id=%s status=%s duration_ms=%s init_ms=%s max_rss_kb=%s max_rss_method=%s exit_code=%s",
		r.ExecutionID, r.Status, num(r.DurationMs), num(r.InitMs), num(r.MaxRSSKB), r.rssMethod(), exitCode(r.ExitCode))
}

// LogLine is serve's one line for a completed execution.
func (r Report) LogLine() string {
	return fmt.Sprintf("EXECUTION function=%s %s total_ms=%d runtime=%s warm=%t", r.Function, r.fields(), r.TotalMs, r.Runtime, r.Warm)
}

// MethodCgroup names a container's cgroup memory peak (Report.MaxRSSMethod).
const MethodCgroup = "cgroup"

// rssMethod is MaxRSSMethod for the report line: "-" when nothing was measured.
func (r Report) rssMethod() string {
	if r.MaxRSSKB < 0 || r.MaxRSSMethod == "" {
		return "-"
	}
	return r.MaxRSSMethod
}

func num(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func exitCode(c *int) string {
	if c == nil {
		return "-"
	}
	return strconv.Itoa(*c)
}

// NewExecutionID returns a fresh execution id: "exec-" and 16 hex digits.
func NewExecutionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "exec-" + hex.EncodeToString(b[:])
}

// ValidExecutionID accepts ids safe in a URL path segment and a log prefix.
func ValidExecutionID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
}

// Outcome is the whole story of one execution.
type Outcome struct {
	Report
	// Result is what the watchdog reported (nil when it reported nothing).
	Result *result.Result
	// Problem explains an outcome without a result.
	Problem string
	Started time.Time
	Ended   time.Time
}

// finish fills the report from the result and the timings.
func (o *Outcome) finish(res *result.Result, arrived time.Time) {
	o.Result = res
	o.Ended = arrived
	o.TotalMs = arrived.Sub(o.Started).Milliseconds()
	o.DurationMs, o.InitMs = -1, -1
	if res == nil {
		return
	}
	o.Status = res.Status()
	o.ExitCode = res.ExitCode
	if res.DurationMs != result.NoDuration {
		o.DurationMs = res.DurationMs
		o.InitMs = max(o.TotalMs-o.DurationMs, 0)
	}
}

// fail records an outcome without a result.
func (o *Outcome) fail(status, format string, args ...any) {
	o.Status = status
	o.Problem = fmt.Sprintf(format, args...)
	if o.Ended.IsZero() {
		o.Ended = time.Now()
		o.TotalMs = o.Ended.Sub(o.Started).Milliseconds()
	}
	if o.Result == nil {
		o.DurationMs, o.InitMs = -1, -1
	}
}

// ErrorMessage is the result's error message or the problem.
func (o *Outcome) ErrorMessage() string {
	if o.Result != nil && o.Result.Error != nil {
		return o.Result.Error.Message
	}
	return o.Problem
}
