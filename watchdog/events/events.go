// Package events names the watchdog's log records that other programs read:
// the conformance suite's watchdog-side (WD-*) checks, log pipelines and
// dashboards. The record names (the "msg" of a JSON log line) and the
// attribute keys below are a stable contract: they change only with a new
// major version of the watchdog, and a test in this package pins them by
// running the watchdog and decoding its records by attribute.
//
// Every other log line of the watchdog is for people and may be reworded
// at any time. Runtime-side (RT-*) verdicts of the conformance suite never
// read any log line: they rest on what can be observed from outside the
// container, so they hold whichever watchdog an image uses.
package events

// Record names: the "msg" of the watchdog's JSON log lines.
const (
	// WatchdogStarting is logged once at debug level when the configuration
	// is valid, before anything is started. Attributes: KeyLifecycle,
	// KeyProtocol, KeyPID1, KeyReapAll.
	WatchdogStarting = "watchdog starting"
	// RuntimeReady is logged when an HTTP runtime first answers its health
	// check: at debug level in one-shot mode, at info level in server mode
	// (once per start of the warm runtime). Attributes: KeyPID, KeyStartupMs.
	RuntimeReady = "runtime ready"
	// InvocationFinished is logged at info level once per invocation, after
	// the function (in one-shot mode, the runtime too) has stopped and before
	// the result is delivered. Attributes: KeySuccess, KeyErrorCode,
	// KeyDurationMs, and in server mode KeyExecutionID (and KeyTraceID when
	// known).
	InvocationFinished = "invocation finished"
)

// Attribute keys of the records above.
const (
	// KeyLifecycle is "one-shot" or "server" (WatchdogStarting).
	KeyLifecycle = "lifecycle"
	// KeyProtocol is the function's protocol: "HTTP", "STDIO" or "FILE"
	// (WatchdogStarting).
	KeyProtocol = "protocol"
	// KeyPID1 is a boolean: whether the watchdog runs as PID 1
	// (WatchdogStarting).
	KeyPID1 = "pid1"
	// KeyReapAll is a boolean: whether the watchdog reaps every orphan, as
	// PID 1 or a subreaper (WatchdogStarting).
	KeyReapAll = "reap_all"
	// KeyPID is the runtime's process id (RuntimeReady).
	KeyPID = "pid"
	// KeyStartupMs is the time in milliseconds from the runtime's start to
	// its first healthy answer (RuntimeReady), in both lifecycles.
	KeyStartupMs = "startup_ms"
	// KeySuccess is a boolean: whether the invocation succeeded
	// (InvocationFinished).
	KeySuccess = "success"
	// KeyErrorCode is the failed result's error code, "" on success
	// (InvocationFinished).
	KeyErrorCode = "error_code"
	// KeyDurationMs is the invocation's duration in milliseconds
	// (InvocationFinished).
	KeyDurationMs = "duration_ms"
	// KeyExecutionID is the invocation's execution id.
	KeyExecutionID = "execution_id"
	// KeyTraceID is the invocation's trace id, when known.
	KeyTraceID = "trace_id"
)
