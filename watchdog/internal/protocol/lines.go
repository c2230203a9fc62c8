package protocol

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/logging"
	"nanofaas.dev/watchdog/internal/process"
	"nanofaas.dev/watchdog/result"
)

// LinesVersion is the version of the line protocol (STDIO_PROTOCOL=lines)
// that the watchdog speaks: the "v" of every request line. See
// docs/warm-scripts.md.
const LinesVersion = 1

// ResultFDEnv names the environment variable that tells a lines function
// the number of the file descriptor its result lines go to.
const ResultFDEnv = "NANOFAAS_RESULT_FD"

// linesReadBuffer is the read buffer of the result channel; a longer line
// is read in several pieces, up to MAX_OUTPUT_BYTES.
const linesReadBuffer = 64 << 10

// Lines runs a STDIO function kept warm between invocations
// (STDIO_PROTOCOL=lines): Start spawns it once, each Invoke writes one
// request line on its stdin and reads exactly one result line from file
// descriptor config.ResultFD. Its stdout and stderr are logs, attributed to
// the invocation in flight. One invocation at a time.
//
// Anything that leaves the process in an unknown state breaks the runtime
// for good: a timeout (its process group is stopped), the process exiting,
// a malformed result line, a result line outside an invocation, the result
// channel closed. Done is then closed, Why says what happened, and the
// caller starts a new Lines.
type Lines struct {
	cfg  config.Config
	deps Deps

	child   *process.Child
	stdin   *os.File
	results *os.File
	// readerDone is closed when the result channel has been read to its
	// end (or its reading failed).
	readerDone chan struct{}

	mu sync.Mutex
	// current is the invocation waiting for its result line, nil between
	// invocations.
	current *linesCall
	why     string
	done    chan struct{}
	// exited is closed when the process has exited, or has broken the
	// protocol (see fail): either way the supervisor must replace it.
	exited   chan struct{}
	exitOnce sync.Once
	// protocolError is why the function broke the protocol ("" while it
	// has not).
	protocolError string

	// owner is the invocation the function's output lines are attributed
	// to: the last one whose request was written.
	owner atomic.Pointer[linesOwner]
}

type linesCall struct {
	answered bool
	answer   chan resultLine
}

type linesOwner struct{ executionID, traceID string }

// resultLine is what the result channel gave: a line, or a problem.
type resultLine struct {
	line    []byte
	problem string
}

// NewLines returns a lines runtime that has not been started.
func NewLines(cfg config.Config, deps Deps) *Lines {
	return &Lines{cfg: cfg, deps: deps, done: make(chan struct{}), exited: make(chan struct{}), readerDone: make(chan struct{})}
}

// Start spawns the function with a pipe on its stdin and the write end of
// the result channel as its file descriptor config.ResultFD. The function
// is ready as soon as it runs: a request written before it reads its stdin
// waits in the pipe, and its startup counts toward the first invocation's
// timeout. A failure to spawn is returned as a result to report.
func (l *Lines) Start(ctx context.Context) *result.Result {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		r := result.Failure(result.StartupError, "watchdog shut down before the function was started").Took(start)
		return &r
	}
	r, w, err := os.Pipe()
	if err != nil {
		res := result.Failure(result.SpawnError, "cannot create the result channel: %v", err).Took(start)
		return &res
	}
	c, err := l.deps.Procs.StartChild(process.Options{
		Argv:       l.cfg.Command,
		Env:        childEnv(l.cfg, ResultFDEnv+"="+strconv.Itoa(config.ResultFD)),
		KeepStdin:  true,
		ExtraFiles: []*os.File{w},
		StdoutSink: l.sink(l.deps.Stdout),
		StderrSink: l.sink(l.deps.Stderr),
	})
	// Only the function holds the write end now: the channel reaches its
	// end when the function (and whatever inherited it) is gone.
	w.Close()
	if err != nil {
		r.Close()
		close(l.readerDone)
		l.breakDown("it could not be started")
		res := spawnFailure(err).Took(start)
		return &res
	}
	l.child, l.stdin, l.results = c, c.StdinPipe(), r
	go l.readResults()
	go func() {
		<-c.Done()
		exit := c.Exit()
		l.markExited()
		l.breakDown(fmt.Sprintf("the function process exited with %s%s", exit, stderrSuffix(c.StderrTailWithin(exitedStderrWait))))
	}()
	l.deps.Log.Debug("lines runtime started", "pid", c.Pid)
	return nil
}

// Pid returns the function process's pid, or 0 when none was started.
func (l *Lines) Pid() int {
	if l.child == nil {
		return 0
	}
	return l.child.Pid
}

// Exited is closed when the function process has exited, or when it broke
// the protocol (see fail): the supervisor then stops and replaces it. A
// timeout does not close it: the supervisor restarts a runtime after every
// timeout anyway.
func (l *Lines) Exited() <-chan struct{} { return l.exited }

// ProtocolError says why the function broke the line protocol, or "" when
// it has not (it may still have exited).
func (l *Lines) ProtocolError() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.protocolError
}

func (l *Lines) markExited() { l.exitOnce.Do(func() { close(l.exited) }) }

// broken is closed when the runtime can take no more invocations; Why says
// why.
func (l *Lines) broken() <-chan struct{} { return l.done }

// Daemonising is false: a lines function serves on its stdin, so a process
// that exited is gone whatever it left in its group.
func (l *Lines) Daemonising() bool { return false }

// Why says why the runtime can take no more invocations ("" while it can).
func (l *Lines) Why() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.why
}

// ExitStatus says how the function process ended, with the tail of its
// stderr; ok is false while it runs or when none was started.
func (l *Lines) ExitStatus() (exit process.Exit, stderrTail string, ok bool) {
	if l.child == nil || !l.child.Exited() {
		return process.Exit{}, "", false
	}
	return l.child.Exit(), l.child.StderrTailWithin(exitedStderrWait), true
}

// fail breaks the runtime for a problem of the function's (it broke the
// protocol, or closed its stdin) and tells the supervisor, which stops its
// process group and starts a new one with the usual backoff.
func (l *Lines) fail(why string) {
	if l.breakDown(why) {
		// The first reason: not a process that had exited already.
		l.mu.Lock()
		l.protocolError = why
		l.mu.Unlock()
	}
	if l.child != nil && !l.child.Exited() {
	}
	l.markExited()
}

// breakDown marks the runtime unusable (the first reason wins) and reports
// whether why was that first reason.
func (l *Lines) breakDown(why string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.why != "" {
		return false
	}
	l.why = why
	close(l.done)
	return true
}

// Stop stops the function's process group (SIGTERM, KILL_GRACE_MS,
// SIGKILL) and closes the result channel.
func (l *Lines) Stop() {
	l.breakDown("the runtime was stopped")
	defer l.markExited()
	if l.child == nil {
		return
	}
	l.child.Finish(l.cfg.KillGrace)
	// A descendant that escaped the group may still hold the write end.
	_ = l.results.SetReadDeadline(time.Now())
	<-l.readerDone
	l.results.Close()
}

// Invoke writes one request line and waits for the one result line.
func (l *Lines) Invoke(ctx context.Context, inv Invocation) result.Result {
	start := time.Now()
	l.mu.Lock()
	if l.why != "" {
		why := l.why
		l.mu.Unlock()
		return result.Failure(result.FunctionError, "the function process cannot take the invocation: %s", why).Took(start)
	}
	call := &linesCall{answer: make(chan resultLine, 1)}
	l.current = call
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.current = nil
		l.mu.Unlock()
	}()
	l.owner.Store(&linesOwner{executionID: inv.ExecutionID, traceID: inv.TraceID})

	deadline := start.Add(inv.Timeout)
	line, err := requestLine(inv, deadline)
	if err != nil {
		return result.Failure(result.FunctionError, "cannot write the request line: %v", err).Took(start)
	}
	timer := time.NewTimer(inv.Timeout)
	defer timer.Stop()
	_ = l.stdin.SetWriteDeadline(deadline)
	if _, err := l.stdin.Write(line); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return l.timedOut(inv, start, "it did not read its request line")
		}
		// The function is gone or closed its stdin.
		l.fail(fmt.Sprintf("cannot write the request line to the function's stdin: %v", err))
		return l.gone(call, inv, start)
	}
	select {
	case r := <-call.answer:
		return l.judge(r, inv).Took(start)
	case <-l.done:
		return l.gone(call, inv, start)
	case <-timer.C:
		return l.timedOut(inv, start, "no result line")
	case <-ctx.Done():
		l.breakDown("the watchdog is shutting down")
		l.child.Finish(l.cfg.KillGrace)
		return result.Failure(result.FunctionError, "invocation interrupted because the watchdog is shutting down").Took(start)
	}
}

// gone reports an invocation whose runtime broke before it answered; an
// answer that came just before the process ended is still taken.
func (l *Lines) gone(call *linesCall, inv Invocation, start time.Time) result.Result {
	wait := time.NewTimer(exitedStderrWait)
	select {
	case <-l.readerDone:
	case <-wait.C:
	}
	wait.Stop()
	select {
	case r := <-call.answer:
		if r.problem == "" {
			return l.judge(r, inv).Took(start)
		}
	default:
	}
	l.settle("")
	r := result.Failure(result.FunctionError, "no result line from the function: %s", l.Why())
	if exit, _, ok := l.ExitStatus(); ok && exit.Signal == 0 {
		r = r.WithExitCode(exit.Code)
	}
	return r.Took(start)
}

// settle breaks the runtime for problem (when not ""), unless the function
// process is exiting: its exit is the better explanation, so it is given a
// moment to be noticed first.
func (l *Lines) settle(problem string) {
	if l.child != nil {
		t := time.NewTimer(exitedStderrWait)
		select {
		case <-l.child.Done():
			t.Reset(2 * exitedStderrWait)
			select {
			case <-l.done:
			case <-t.C:
			}
		case <-t.C:
		}
		t.Stop()
	}
	if problem != "" {
		l.fail(problem)
	}
}

// timedOut takes the runtime out of service: its state is unknown. The
// server lifecycle restarts a runtime after every timeout, stopping its
// whole process group.
func (l *Lines) timedOut(inv Invocation, start time.Time, what string) result.Result {
	l.breakDown(fmt.Sprintf("invocation %s timed out (%s within %dms); the process group is stopped", inv.ExecutionID, what, inv.Timeout.Milliseconds()))
	return result.Failure(result.Timeout, "Function exceeded timeout of %dms", inv.Timeout.Milliseconds()).Took(start)
}

// judge turns a result line into the invocation's result. A line that
// breaks the protocol breaks the runtime too.
func (l *Lines) judge(r resultLine, inv Invocation) result.Result {
	if r.problem != "" {
		l.settle(r.problem)
		r := result.Failure(result.FunctionError, "no result line from the function: %s", l.Why())
		if exit, _, ok := l.ExitStatus(); ok && exit.Signal == 0 {
			r = r.WithExitCode(exit.Code)
		}
		return r
	}
	out, errMsg, bad := parseResultLine(r.line, inv.ExecutionID)
	if bad != "" {
		quoted := excerpt(bytes.TrimRight(r.line, "\r\n"), 200)
		why := fmt.Sprintf("malformed result line on fd %d: %s; got %s", config.ResultFD, bad, quoted)
		l.fail(why)
		res := result.Failure(result.FunctionError, "%s (the function is restarted)", why)
		res.Error.Quoted = quoted
		return res
	}
	if errMsg != nil {
		return result.Failure(result.FunctionError, "%s", *errMsg)
	}
	return result.Success(out)
}

// parseResultLine reads a result line: a JSON object with "output" (any
// JSON value) or "error" (a non-empty string), and optionally
// "execution_id", which must then be the invocation's. Other fields are
// ignored (later versions may add some). bad says what is wrong, or "".
func parseResultLine(line []byte, executionID string) (out json.RawMessage, errMsg *string, bad string) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if !utf8.Valid(line) {
		return nil, nil, "it is not valid UTF-8"
	}
	trimmed := bytes.Trim(line, jsonSpace)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, nil, `it is not a JSON object: write {"output": <JSON>} or {"error": "message"} on one line`
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return nil, nil, fmt.Sprintf("it is not one JSON object (%v)", err)
	}
	output, hasOutput := fields["output"]
	rawErr, hasError := fields["error"]
	switch {
	case hasOutput && hasError:
		return nil, nil, `it has both "output" and "error": one of them`
	case !hasOutput && !hasError:
		return nil, nil, `it has neither "output" nor "error"`
	}
	if rawID, ok := fields["execution_id"]; ok {
		var id string
		if json.Unmarshal(rawID, &id) != nil || id != executionID {
			return nil, nil, fmt.Sprintf(`its "execution_id" %s is not the invocation's %q (a result line answers the last request line)`, rawID, executionID)
		}
	}
	if hasError {
		var msg string
		if json.Unmarshal(rawErr, &msg) != nil || msg == "" {
			return nil, nil, fmt.Sprintf(`its "error" is %s, not a non-empty string`, rawErr)
		}
		return nil, &msg, ""
	}
	return output, nil, ""
}

// requestLine renders an invocation as one line of JSON: no newline can
// occur inside it (the payload is compacted, strings are escaped).
func requestLine(inv Invocation, deadline time.Time) ([]byte, error) {
	payload := []byte(inv.Payload)
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("null")
	}
	b := bytes.NewBuffer(make([]byte, 0, len(payload)+len(inv.ExecutionID)+len(inv.TraceID)+128))
	b.WriteString(`{"v":`)
	b.WriteString(strconv.Itoa(LinesVersion))
	b.WriteString(`,"execution_id":`)
	b.Write(logging.AppendJSONString(b.AvailableBuffer(), inv.ExecutionID))
	b.WriteString(`,"trace_id":`)
	b.Write(logging.AppendJSONString(b.AvailableBuffer(), inv.TraceID))
	b.WriteString(`,"deadline_ms":`)
	b.WriteString(strconv.FormatInt(deadline.UnixMilli(), 10))
	b.WriteString(`,"timeout_ms":`)
	b.WriteString(strconv.FormatInt(inv.Timeout.Milliseconds(), 10))
	b.WriteString(`,"payload":`)
	if err := json.Compact(b, payload); err != nil {
		return nil, fmt.Errorf("cannot compact the payload: %w", err)
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// readResults reads the result channel line by line and hands each line to
// the invocation waiting for it. A line when none waits (a second line, or
// one between invocations) breaks the runtime; so does the channel's end.
func (l *Lines) readResults() {
	defer close(l.readerDone)
	br := bufio.NewReaderSize(l.results, linesReadBuffer)
	limit := l.cfg.MaxOutputBytes
	for {
		line, problem := readResultLine(br, limit)
		l.deliver(resultLine{line: line, problem: problem})
		if problem != "" {
			return
		}
	}
}

// readResultLine reads one line of at most limit bytes (its newline not
// counted), or says why it cannot.
func readResultLine(br *bufio.Reader, limit int64) ([]byte, string) {
	var line []byte
	for {
		piece, err := br.ReadSlice('\n')
		if int64(len(line)+len(piece)) > limit+1 {
			return nil, fmt.Sprintf("a result line longer than MAX_OUTPUT_BYTES=%d bytes", limit)
		}
		line = append(line, piece...)
		switch {
		case err == nil:
			return line, ""
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, fmt.Sprintf("the result channel (fd %d) was closed in the middle of a line (%d bytes without a newline)", config.ResultFD, len(line))
		case errors.Is(err, io.EOF):
			return nil, fmt.Sprintf("the function closed its result channel (fd %d)", config.ResultFD)
		default:
			return nil, fmt.Sprintf("cannot read the result channel (fd %d): %v", config.ResultFD, err)
		}
	}
}

// deliver gives r to the invocation waiting for its line, or breaks the
// runtime when none is waiting.
func (l *Lines) deliver(r resultLine) {
	l.mu.Lock()
	if call := l.current; call != nil && !call.answered {
		call.answered = true
		call.answer <- r
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	if r.problem != "" {
		l.settle(r.problem)
		return
	}
	l.fail(fmt.Sprintf("the function wrote a result line on fd %d outside an invocation (a second result line, or one before any request): %s",
		config.ResultFD, excerpt(bytes.TrimSuffix(r.line, []byte("\n")), 200)))
}

// sink passes the function's output lines to w (the watchdog's sink for
// that stream: one record per line, or the lines unchanged with
// FUNCTION_LOG_FORMAT=raw), each attributed to the invocation it belongs to:
// the last one whose request was written.
func (l *Lines) sink(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	return &linesSink{l: l, w: w}
}

type linesSink struct {
	l *Lines
	w io.Writer
}

// Write passes one line of the function's output on.
func (s *linesSink) Write(p []byte) (int, error) {
	w := s.w
	if o := s.l.owner.Load(); o != nil {
		w = logging.ForExecution(w, o.executionID)
	}
	return w.Write(p)
}
