package config

// Var documents one environment variable the watchdog reads.
type Var struct {
	Name    string
	Default string
	Help    string
}

// vars lists every variable the watchdog reads, in the order --help and the
// configuration table of docs/configuration.md show them. The defaults here
// are the ones New applies.
var vars = []Var{
	{"EXECUTION_ID", "", "Unique execution identifier; required in one-shot mode."},
	{"CALLBACK_URL", "", "Control-plane callback base URL; required in one-shot mode. The result goes to CALLBACK_URL/{EXECUTION_ID}:complete unless it already ends in :complete."},
	{"EXECUTION_MODE", "HTTP", "Runtime protocol: HTTP, STDIO, FILE, or WARM (server mode with a warm HTTP runtime)."},
	{"WARM", "false", "true: server mode (serve /invoke on WARM_PORT) with the EXECUTION_MODE protocol."},
	{"TIMEOUT_MS", "30000", "Invocation timeout in milliseconds (> 0)."},
	{"TRACE_ID", "", "Distributed tracing ID, passed to the function and the callback."},
	{"WATCHDOG_CMD", "java -jar /app/app.jar", "Function command, split shell-style (quotes and backslashes honoured) and run without a shell."},
	{"RUNTIME_URL", "http://127.0.0.1:8080/invoke", "HTTP runtime invoke endpoint (server mode: port 8081 by default)."},
	{"HEALTH_URL", "", "HTTP runtime readiness endpoint, polled until it answers 2xx; unset: RUNTIME_URL with its path replaced by /health."},
	{"READY_TIMEOUT_MS", "10000", "Maximum wait for the HTTP runtime to become ready, in milliseconds (> 0)."},
	{"INPUT_FILE", "/tmp/input.json", "FILE mode: where the payload is written before the function starts."},
	{"OUTPUT_FILE", "/tmp/output.json", "FILE mode: where the function writes its result."},
	{"INVOCATION_PAYLOAD", "null", "One-shot payload, one JSON document."},
	{"WARM_PORT", "8080", "Server mode: port of the watchdog's own HTTP server (/invoke, /health, /metrics)."},
	{"WARM_IDLE_TIMEOUT_MS", "300000", "Server mode: exit 0 after this long without an invocation; 0 disables."},
	{"WARM_MAX_INVOCATIONS", "0", "Server mode: restart the warm runtime after this many invocations; 0 means never."},
	{"WARM_AUTH_TOKEN", "", "Server mode: when set, /invoke requires Authorization: Bearer <token>."},
	{"WARM_MAX_CONNECTIONS", "256", "Server mode: most connections open to WARM_PORT at once; past it a new connection is answered 503 TOO_MANY_CONNECTIONS and closed. 0 means no cap."},
	{"MAX_PAYLOAD_BYTES", "16777216", "Server mode: largest accepted /invoke body, in bytes."},
	{"MAX_OUTPUT_BYTES", "33554432", "Largest function output accepted (stdout, OUTPUT_FILE or HTTP response body), in bytes."},
	{"KILL_GRACE_MS", "2000", "Time between SIGTERM and SIGKILL to the function's process group, in milliseconds."},
	{"CALLBACK_ATTEMPTS", "3", "Callback delivery attempts (>= 1); transport errors, 408, 429 and 5xx are retried."},
	{"CALLBACK_BACKOFF_MS", "200", "Delay before the second callback attempt, doubled for each later one (capped at 5s)."},
	{"CALLBACK_TIMEOUT_MS", "10000", "Timeout of each callback attempt, in milliseconds (> 0)."},
	{"CALLBACK_ALLOWED_PREFIXES", "", "Server mode: comma-separated URL prefixes (e.g. http://control-plane:8080/v1/internal/executions); when set, an /invoke callback_url outside them is refused with 400. CALLBACK_URL itself is trusted."},
	{"FUNCTION_NAME", "unknown", "Function name used in metrics labels."},
	{"WATCHDOG_SUBREAPER", "false", "true: become a child subreaper and reap orphans even when not PID 1."},
	{"LOG_LEVEL", "info", "debug, info, warn or error."},
	{"LOG_FORMAT", "json", "json or text: the format of the watchdog's own log lines on stderr."},
	{"PASS_CALLBACK_URL", "false", "true: hand CALLBACK_URL to the function too. By default the function does not see it, so that a runtime that reports by itself (the nanofaas SDKs do when they see CALLBACK_URL) cannot post a second result: the watchdog posts the one result of each execution."},
	{"WARM_CONCURRENCY", "1", "Server mode: invocations run at once (forwarded to the warm runtime together, or per-invocation processes side by side); >= 1."},
	{"WARM_QUEUE_SIZE", "32", "Server mode: requests that may wait for a slot when all WARM_CONCURRENCY are busy; past it /invoke answers 429 BUSY with Retry-After. 0: no queue."},
	{"WARM_QUEUE_TIMEOUT_MS", "0", "Server mode: longest wait in the queue, in milliseconds; 0: the invocation's own timeout (TIMEOUT_MS or timeout_ms), which the wait always counts against. A call still waiting then gets 429 QUEUE_TIMEOUT with Retry-After."},
	{"FUNCTION_LOG_FORMAT", "wrapped", "wrapped: each line the function writes to stdout or stderr becomes a watchdog record (msg \"function output\", the line in its \"line\" field), so it can never pass for one of the watchdog's own; raw: lines pass through unchanged."},
	{"STDIO_PROTOCOL", "per-invocation", "Server mode with EXECUTION_MODE=STDIO: per-invocation (a process per invocation) or lines (one process kept warm, one request line per invocation on its stdin, one result line on file descriptor NANOFAAS_RESULT_FD=3; see docs/warm-scripts.md)."},
}

// Variables returns the documentation of every variable the watchdog reads.
func Variables() []Var {
	out := make([]Var, len(vars))
	copy(out, vars)
	return out
}
