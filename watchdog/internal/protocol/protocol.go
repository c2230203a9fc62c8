// Package protocol runs invocations against a function process with one of
// the runtime protocols: HTTP (a server in the child), STDIO (stdin in,
// stdout out) and FILE (INPUT_FILE in, OUTPUT_FILE out). The protocols are
// peers behind Runtime; the lifecycle (one-shot or server) is the caller's.
package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/process"
	"nanofaas.dev/watchdog/result"
)

// Invocation is one call of the function.
type Invocation struct {
	ExecutionID string
	TraceID     string
	Payload     json.RawMessage
	Timeout     time.Duration
}

// Invoker runs invocations. The per-invocation protocols (STDIO, FILE)
// are nothing more: each Invoke spawns the function, hands it the
// invocation and waits for it to exit; nothing is started before or left
// after. Invoke may be called from several goroutines at once (server mode
// with WARM_CONCURRENCY > 1), each call with its own process.
type Invoker interface {
	// Invoke runs one invocation. Cancelling ctx stops it: the function's
	// group (per-invocation protocols) or the request (a Process); the
	// result then says why, with ctx's cause when it has one.
	Invoke(ctx context.Context, inv Invocation) result.Result
}

// Process is a function process that serves many invocations (the HTTP
// protocol): the server lifecycle starts it once, supervises it (Exited,
// Pid, ExitStatus) and restarts it; the one-shot lifecycle starts it, runs
// its one invocation and stops it. Invoke may be called from several
// goroutines at once (WARM_CONCURRENCY). Each Start needs a fresh value.
type Process interface {
	Invoker
	// Start spawns the process and waits until it is ready; a failure is
	// returned as a result to report.
	Start(ctx context.Context) *result.Result
	// Stop stops the process's group (SIGTERM, grace, SIGKILL).
	Stop()
	// Exited is closed when the process Start spawned has exited.
	Exited() <-chan struct{}
	// Pid is the process's pid, 0 before Start.
	Pid() int
	// ExitStatus says how the process ended, with the tail of its stderr;
	// ok is false while it runs or before Start.
	ExitStatus() (exit process.Exit, stderrTail string, ok bool)
	// Daemonising reports whether a process that exits 0 may have left its
	// server running in its process group (an HTTP runtime that forks into
	// the background): the supervisor then watches the group instead.
	Daemonising() bool
}

// Interruption is the cause to cancel an invocation's context with when
// the invocation is stopped for a reason of the lifecycle's (not a
// shutdown): the result is a FUNCTION_ERROR with Message as its message.
type Interruption struct {
	Message string
	// Exit, when not nil, is how the runtime ended (it died under the
	// invocation), and StderrTail the end of its stderr: the result
	// carries both, as when the invocation itself noticed the death.
	Exit       *process.Exit
	StderrTail string
}

func (i *Interruption) Error() string { return i.Message }

// Deps are what every protocol needs from the watchdog.
type Deps struct {
	Procs *process.Manager
	Log   *slog.Logger
	// Stdout and Stderr receive the function's output lines that are not
	// its result (the container log).
	Stdout, Stderr io.Writer
	// LogDropped, when not nil, returns how many log records and output
	// lines were dropped because nothing read the watchdog's output.
	LogDropped func() uint64
}

// NewProcess returns a Process for cfg.Protocol, or nil when the protocol
// runs a process per invocation (use NewPerInvocation). The server
// lifecycle supervises whatever Process this returns, so a persistent
// protocol for another kind of runtime slots in here.
func NewProcess(cfg config.Config, deps Deps) Process {
	switch {
	case cfg.Protocol == config.ProtocolHTTP:
		return NewHTTP(cfg, deps)
	case cfg.Protocol == config.ProtocolSTDIO && cfg.StdioProtocol == config.StdioLines:
		return NewLines(cfg, deps)
	}
	return nil
}

// NewPerInvocation returns the Invoker of a per-invocation protocol
// (STDIO, FILE), or nil when the protocol keeps a process (use
// NewProcess).
func NewPerInvocation(cfg config.Config, deps Deps) Invoker {
	switch cfg.Protocol {
	case config.ProtocolSTDIO:
		return &STDIO{cfg: cfg, deps: deps}
	case config.ProtocolFILE:
		return &File{cfg: cfg, deps: deps}
	default:
		return nil
	}
}

// childEnv is the function's environment: the watchdog's, minus its
// secrets and (unless PASS_CALLBACK_URL=true) CALLBACK_URL, with set
// applied on top (replacing any earlier value of the same name).
//
// CALLBACK_URL is withheld so that exactly one result reaches the control
// plane per execution: the watchdog's. A runtime built on a nanofaas SDK
// posts a callback of its own when it sees CALLBACK_URL, which would be a
// second result (docs/compatibility.md).
func childEnv(cfg config.Config, set ...string) []string {
	base := cfg.Env
	out := make([]string, 0, len(base)+len(set))
	overridden := func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		if name == "WARM_AUTH_TOKEN" || name == "CALLBACK_URL" && !cfg.PassCallbackURL {
			return true
		}
		for _, s := range set {
			if n, _, _ := strings.Cut(s, "="); n == name {
				return true
			}
		}
		return false
	}
	for _, kv := range base {
		if !overridden(kv) {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}

// invocationEnv is what a per-invocation process gets about its invocation.
func invocationEnv(inv Invocation) []string {
	env := []string{"EXECUTION_ID=" + inv.ExecutionID}
	if inv.TraceID != "" {
		env = append(env, "TRACE_ID="+inv.TraceID)
	}
	return env
}

// jsonSpace is the whitespace JSON allows around a document. Other blanks
// (NBSP, form feed, U+2028...) around it make the output something else
// than one JSON document, so they are not trimmed.
const jsonSpace = " \t\r\n"

// checkOutput accepts exactly one JSON document in valid UTF-8.
func checkOutput(what string, out []byte) (json.RawMessage, *result.Result) {
	trimmed := bytes.Trim(out, jsonSpace)
	if len(trimmed) == 0 {
		r := result.Failure(result.FunctionError, "%s is empty: the function must produce one JSON document", what)
		return nil, &r
	}
	if !utf8.Valid(trimmed) {
		r := result.Failure(result.FunctionError, "%s is not valid UTF-8: the function must produce one JSON document", what)
		return nil, &r
	}
	if !json.Valid(trimmed) {
		quoted := excerpt(trimmed, 200)
		r := result.Failure(result.FunctionError, "Invalid JSON in %s: the function must produce one JSON document, got %s", what, quoted)
		r.Error.Quoted = quoted
		return nil, &r
	}
	return json.RawMessage(trimmed), nil
}

// excerpt quotes the start of b for a message.
func excerpt(b []byte, n int) string {
	if len(b) > n {
		return fmt.Sprintf("%q... (%d bytes)", b[:n], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// stderrSuffix formats the tail of the function's stderr for a message.
func stderrSuffix(tail string) string {
	tail = strings.TrimSpace(tail)
	if tail == "" {
		return ""
	}
	const max = 2000
	if len(tail) > max {
		tail = "..." + tail[len(tail)-max:]
	}
	return "; stderr: " + tail
}

// waitChild waits for a per-invocation process to exit, to time out, or for
// the watchdog to shut down; then it finishes the process's group and streams.
// It returns a failure for timeout, and whether shutdown interrupted it.
func waitChild(ctx context.Context, c *process.Child, inv Invocation, grace time.Duration) (timeout *result.Result, interrupted bool) {
	timer := time.NewTimer(inv.Timeout)
	defer timer.Stop()
	select {
	case <-c.Done():
	case <-timer.C:
		c.Finish(grace)
		r := result.Failure(result.Timeout, "Function exceeded timeout of %dms", inv.Timeout.Milliseconds())
		return &r, false
	case <-ctx.Done():
		// The stop signal was forwarded to the group already: give the
		// function its grace to act on it before signalling again.
		wait := time.NewTimer(grace)
		defer wait.Stop()
		select {
		case <-c.Done():
			c.Finish(grace)
		case <-wait.C:
			c.Finish(0)
		}
		return nil, true
	}
	c.Finish(grace)
	return nil, false
}

// exitFailure reports a process that did not exit 0.
func exitFailure(c *process.Child, interrupted bool) result.Result {
	exit := c.Exit()
	format := "function failed with %s%s"
	if interrupted {
		format = "function ended with %s after the watchdog began shutting down%s"
	}
	r := result.Failure(result.FunctionError, format, exit, stderrSuffix(c.StderrTail()))
	if exit.Signal == 0 {
		r = r.WithExitCode(exit.Code)
	}
	return r
}

func spawnFailure(err error) result.Result {
	return result.Failure(result.SpawnError, "%v", err)
}
