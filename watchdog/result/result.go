// Package result defines the body the watchdog reports for every invocation:
// the seed's {"success","output","error"} plus facts about the run.
package result

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Code classifies a failed invocation.
type Code string

// The error codes of the seed.
const (
	// SpawnError: the function process could not be started.
	SpawnError Code = "SPAWN_ERROR"
	// StartupError: the HTTP runtime did not become ready.
	StartupError Code = "STARTUP_ERROR"
	// FunctionError: the function failed or its output was unusable.
	FunctionError Code = "FUNCTION_ERROR"
	// Timeout: the invocation exceeded its timeout.
	Timeout Code = "TIMEOUT"
)

// Error says why an invocation failed.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Quoted is the part of Message that quotes the function's output (an
	// excerpt of refused output), when there is one. The caller gets it;
	// the log does not (see LogMessage).
	Quoted string `json:"-"`
}

// Error is the code and the message.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// LogMessage is Message without what it quotes of the function's output:
// outputs are never logged at info level.
func (e *Error) LogMessage() string {
	if e.Quoted == "" {
		return e.Message
	}
	return strings.Replace(e.Message, e.Quoted, "(output not logged)", 1)
}

// Result is the outcome of one invocation.
type Result struct {
	Success bool            `json:"success"`
	Output  json.RawMessage `json:"output"`
	Error   *Error          `json:"error"`
	// ExitCode is the function process's exit status, when it exited by itself.
	ExitCode *int `json:"exit_code,omitempty"`
	// DurationMs is the invocation's wall time in milliseconds.
	DurationMs int64 `json:"duration_ms"`
}

// Success is a successful result carrying output, which must be one JSON document.
func Success(output json.RawMessage) Result {
	return Result{Success: true, Output: output}
}

// Failure is a failed result.
func Failure(code Code, format string, args ...any) Result {
	return Result{Error: &Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// WithExitCode records the process exit code.
func (r Result) WithExitCode(code int) Result {
	r.ExitCode = &code
	return r
}

// Took records the duration since start.
func (r Result) Took(start time.Time) Result {
	r.DurationMs = time.Since(start).Milliseconds()
	return r
}

// ErrorCode returns the error code, or "" on success.
func (r Result) ErrorCode() Code {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

// Marshal encodes the result. Output was validated when it was captured, so
// this cannot fail for results built by this package.
func (r Result) Marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		// The output was not valid JSON after all: report that rather than lose it.
		b, _ = json.Marshal(Failure(FunctionError, "watchdog could not encode the output: %v", err))
	}
	return b
}
