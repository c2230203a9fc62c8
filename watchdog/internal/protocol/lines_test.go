package protocol

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/logging"
	"nanofaas.dev/watchdog/internal/process"
	"nanofaas.dev/watchdog/result"
)

// lockedBuffer collects log lines written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type linesFixture struct {
	rt             *Lines
	stdout, stderr *lockedBuffer
	log            *lockedBuffer
}

// startLines starts the lines fixture (fixtures/runtimes/lines_runtime.py)
// with the given startup behaviour; it is stopped when the test ends.
func startLines(t *testing.T, startup string, edit ...func(*config.Config)) *linesFixture {
	t.Helper()
	script, err := filepath.Abs("../../../fixtures/runtimes/lines_runtime.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := []string{script}
	if startup != "" {
		cmd = append(cmd, startup)
	}
	cfg := config.Config{
		Command:        cmd,
		Env:            []string{"PATH=" + os.Getenv("PATH")},
		KillGrace:      500 * time.Millisecond,
		MaxOutputBytes: 1 << 20,
		LogFormat:      "json",
	}
	for _, e := range edit {
		e(&cfg)
	}
	f := &linesFixture{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, log: &lockedBuffer{}}
	log := slog.New(slog.NewJSONHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	procs := process.NewManager(log, false)
	t.Cleanup(procs.Close)
	// The function's output goes through the watchdog's sinks: one record
	// per line.
	stdout := logging.NewFunctionOutput(f.stdout, "json", logging.FunctionWrapped, "stdout")
	stderr := logging.NewFunctionOutput(f.stderr, "json", logging.FunctionWrapped, "stderr")
	f.rt = NewLines(cfg, Deps{Procs: procs, Log: log, Stdout: stdout, Stderr: stderr})
	if failed := f.rt.Start(context.Background()); failed != nil {
		t.Fatalf("Start: %+v", failed.Error)
	}
	t.Cleanup(func() {
		f.rt.Stop()
		if pid := f.rt.Pid(); pid > 0 {
			if _, _, exited := f.rt.ExitStatus(); !exited {
				t.Errorf("the function process %d outlived Stop", pid)
			}
		}
	})
	return f
}

func (f *linesFixture) invoke(t *testing.T, id string, payload string, timeout time.Duration) result.Result {
	t.Helper()
	return f.rt.Invoke(context.Background(), Invocation{ExecutionID: id, TraceID: "t-" + id, Payload: json.RawMessage(payload), Timeout: timeout})
}

// waitDone waits for the runtime to break and returns why.
func (f *linesFixture) waitDone(t *testing.T) string {
	t.Helper()
	select {
	case <-f.rt.broken():
		return f.rt.Why()
	case <-time.After(10 * time.Second):
		t.Fatal("the runtime did not break within 10s")
		return ""
	}
}

func (f *linesFixture) alive(t *testing.T) {
	t.Helper()
	select {
	case <-f.rt.broken():
		t.Fatalf("the runtime broke: %s", f.rt.Why())
	default:
	}
}

type echo struct {
	Payload          json.RawMessage `json:"payload"`
	Pid              int             `json:"pid"`
	Calls            int             `json:"calls"`
	ExecutionID      string          `json:"execution_id"`
	TraceID          string          `json:"trace_id"`
	V                int             `json:"v"`
	TimeoutMs        int64           `json:"timeout_ms"`
	DeadlineInFuture bool            `json:"deadline_in_future"`
}

func mustEcho(t *testing.T, r result.Result) echo {
	t.Helper()
	if !r.Success {
		t.Fatalf("failed: %+v", r.Error)
	}
	var e echo
	if err := json.Unmarshal(r.Output, &e); err != nil {
		t.Fatalf("output %s: %v", r.Output, err)
	}
	return e
}

func TestLinesServesInvocationsInOneProcess(t *testing.T) {
	f := startLines(t, "")
	var pid int
	for i, payload := range []string{`{"n":1}`, "{\n  \"text\": \"a\\nb\"\n}", `"é ✓ \u2028"`, `null`} {
		id := "e" + string(rune('1'+i))
		e := mustEcho(t, f.invoke(t, id, payload, 10*time.Second))
		if pid == 0 {
			pid = e.Pid
		}
		if e.Pid != pid || e.Pid != f.rt.Pid() {
			t.Errorf("call %d ran in pid %d, want the one process %d", i+1, e.Pid, f.rt.Pid())
		}
		if e.Calls != i+1 || e.ExecutionID != id || e.TraceID != "t-"+id || e.V != LinesVersion || e.TimeoutMs != 10000 || !e.DeadlineInFuture {
			t.Errorf("call %d: the function got %+v", i+1, e)
		}
		var want, got any
		_ = json.Unmarshal([]byte(payload), &want)
		_ = json.Unmarshal(e.Payload, &got)
		if !jsonEqual(want, got) {
			t.Errorf("call %d: payload %s arrived as %s", i+1, payload, e.Payload)
		}
	}
	f.alive(t)
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestLinesErrorResultKeepsTheProcess(t *testing.T) {
	f := startLines(t, "")
	r := f.invoke(t, "e1", `{"do":"error","why":"n must be a number"}`, 10*time.Second)
	if r.Success || r.ErrorCode() != result.FunctionError || r.Error.Message != "bad input: n must be a number" {
		t.Fatalf("got %+v", r)
	}
	f.alive(t)
	if e := mustEcho(t, f.invoke(t, "e2", `{}`, 10*time.Second)); e.Calls != 2 {
		t.Errorf("the second call was call %d of its process, want 2", e.Calls)
	}
}

func TestLinesOutputIsLoggedForTheInvocation(t *testing.T) {
	f := startLines(t, "")
	mustEcho(t, f.invoke(t, "logs-1", `{"do":"log"}`, 10*time.Second))
	f.alive(t)
	for _, c := range []struct {
		buf    *lockedBuffer
		stream string
		line   string
	}{{f.stdout, "stdout", "hello from stdout"}, {f.stderr, "stderr", "hello from stderr"}} {
		rec := waitRecord(t, c.buf, c.line)
		if rec["msg"] != "function output" || rec["stream"] != c.stream || rec["execution_id"] != "logs-1" {
			t.Errorf("%s record: %v", c.stream, rec)
		}
	}
}

// waitRecord waits for a JSON log record whose "line" contains line.
func waitRecord(t *testing.T, buf *lockedBuffer, line string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sc := bufio.NewScanner(strings.NewReader(buf.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && strings.Contains(fmt.Sprint(rec["line"]), line) {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record with line %q in:\n%s", line, buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A timeout takes the runtime out of service; the server lifecycle then
// restarts it, and Stop ends its whole process group.
func TestLinesTimeoutStopsTheProcessGroup(t *testing.T) {
	f := startLines(t, "")
	// A first call: the interpreter is up (past any launcher) and waits
	// for its next request when the timeout strikes.
	mustEcho(t, f.invoke(t, "first", `{}`, 10*time.Second))
	pid := f.rt.Pid()
	start := time.Now()
	r := f.invoke(t, "slow", `{"do":"hang"}`, 300*time.Millisecond)
	if r.ErrorCode() != result.Timeout || r.Error.Message != "Function exceeded timeout of 300ms" {
		t.Fatalf("got %+v", r)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the timeout took %v", took)
	}
	if why := f.waitDone(t); !strings.Contains(why, "invocation slow timed out") {
		t.Errorf("why: %q", why)
	}
	if r := f.invoke(t, "after", `{}`, time.Second); r.ErrorCode() != result.FunctionError || !strings.Contains(r.Error.Message, "cannot take the invocation") {
		t.Errorf("a call on the broken runtime: %+v", r)
	}
	f.rt.Stop()
	// Killed members are gone once reaped (a zombie still answers kill 0).
	for deadline := time.Now().Add(3 * time.Second); syscall.Kill(-pid, 0) == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still alive 3s after Stop", pid)
		}
	}
}

func TestLinesCrashIsAFunctionError(t *testing.T) {
	f := startLines(t, "")
	r := f.invoke(t, "boom", `{"do":"crash"}`, 10*time.Second)
	if r.ErrorCode() != result.FunctionError || r.ExitCode == nil || *r.ExitCode != 7 {
		t.Fatalf("got %+v", r)
	}
	for _, want := range []string{"no result line from the function: the function process exited with exit code 7", "segfault in the handler"} {
		if !strings.Contains(r.Error.Message, want) {
			t.Errorf("message %q lacks %q", r.Error.Message, want)
		}
	}
	f.waitDone(t)
}

func TestLinesMalformedResultLines(t *testing.T) {
	for _, tc := range []struct {
		do, want string
	}{
		{"garbage", `malformed result line on fd 3: it is not a JSON object`},
		{"not-object", `malformed result line on fd 3: it is not a JSON object`},
		{"both", `malformed result line on fd 3: it has both "output" and "error"`},
		{"wrong-id", `malformed result line on fd 3: its "execution_id" "someone-else" is not the invocation's "m1"`},
		{"big", `no result line from the function: a result line longer than MAX_OUTPUT_BYTES=1000 bytes`},
		{"no-newline", `no result line from the function: the function process exited with exit code 0`},
	} {
		t.Run(tc.do, func(t *testing.T) {
			f := startLines(t, "", func(c *config.Config) { c.MaxOutputBytes = 1000 })
			r := f.invoke(t, "m1", `{"do":"`+tc.do+`","n":5000}`, 10*time.Second)
			if r.ErrorCode() != result.FunctionError || !strings.Contains(r.Error.Message, tc.want) {
				t.Fatalf("got %+v, want FUNCTION_ERROR with %q", r.Error, tc.want)
			}
			f.waitDone(t)
		})
	}
}

func TestLinesResultOnStdoutIsALogNotAResult(t *testing.T) {
	f := startLines(t, "")
	mustEcho(t, f.invoke(t, "first", `{}`, 10*time.Second))
	r := f.invoke(t, "s1", `{"do":"stdout-result"}`, time.Second)
	if r.ErrorCode() != result.Timeout {
		t.Fatalf("got %+v, want TIMEOUT: stdout is a log", r)
	}
	rec := waitRecord(t, f.stdout, `{"output": {"payload": {"do": "stdout-result"}`)
	if rec["stream"] != "stdout" || rec["execution_id"] != "s1" {
		t.Errorf("record: %v", rec)
	}
}

func TestLinesSecondResultLineBreaksTheRuntime(t *testing.T) {
	for _, do := range []string{"twice", "late"} {
		t.Run(do, func(t *testing.T) {
			f := startLines(t, "")
			r := f.invoke(t, "x1", `{"do":"`+do+`"}`, 10*time.Second)
			if !r.Success {
				t.Fatalf("the first line answers the invocation: %+v", r.Error)
			}
			if why := f.waitDone(t); !strings.Contains(why, "the function wrote a result line on fd 3 outside an invocation") {
				t.Errorf("why: %q", why)
			}
		})
	}
}

func TestLinesStartupViolations(t *testing.T) {
	for _, tc := range []struct{ startup, want string }{
		{"unsolicited", `the function wrote a result line on fd 3 outside an invocation (a second result line, or one before any request): "{\"output\": \"nobody asked\"}"`},
		{"close-fd", "the function closed its result channel (fd 3)"},
		{"exit", "the function process exited with exit code 3; stderr: cannot import the handler"},
	} {
		t.Run(tc.startup, func(t *testing.T) {
			f := startLines(t, tc.startup)
			if why := f.waitDone(t); why != tc.want {
				t.Errorf("why:\n got %q\nwant %q", why, tc.want)
			}
		})
	}
}

func TestLinesSpawnError(t *testing.T) {
	procs := process.NewManager(slog.New(slog.DiscardHandler), false)
	defer procs.Close()
	rt := NewLines(config.Config{Command: []string{"/nonexistent/handler"}}, Deps{Procs: procs, Log: slog.New(slog.DiscardHandler)})
	failed := rt.Start(context.Background())
	if failed == nil || failed.ErrorCode() != result.SpawnError || !strings.Contains(failed.Error.Message, `cannot start "/nonexistent/handler"`) {
		t.Fatalf("got %+v", failed)
	}
	<-rt.broken()
	rt.Stop()
}

func TestParseResultLine(t *testing.T) {
	for _, tc := range []struct {
		line, out, err, bad string
	}{
		{`{"output":{"a":1}}`, `{"a":1}`, "", ""},
		{`{"output":null}`, `null`, "", ""},
		{` {"output" : [1, 2] , "extra": true}` + "\r\n", `[1, 2]`, "", ""},
		{`{"execution_id":"e1","output":"x"}`, `"x"`, "", ""},
		{`{"error":"nope"}`, "", "nope", ""},
		{`{"error":""}`, "", "", `its "error" is "", not a non-empty string`},
		{`{"error":{"message":"x"}}`, "", "", `its "error" is {"message":"x"}, not a non-empty string`},
		{`{}`, "", "", `it has neither "output" nor "error"`},
		{`{"output":1} {"output":2}`, "", "", "it is not one JSON object"},
		{`{"output":1`, "", "", "it is not one JSON object"},
		{"{\"output\":\"\xff\"}", "", "", "it is not valid UTF-8"},
		{`"just a string"`, "", "", "it is not a JSON object"},
		{`{"execution_id":7,"output":1}`, "", "", `its "execution_id" 7 is not the invocation's "e1"`},
	} {
		out, msg, bad := parseResultLine([]byte(tc.line), "e1")
		got := []string{string(out), "", bad}
		if msg != nil {
			got[1] = *msg
		}
		if got[0] != tc.out || got[1] != tc.err || !strings.HasPrefix(got[2], tc.bad) || (tc.bad == "") != (got[2] == "") {
			t.Errorf("%q: got output %q error %q bad %q", tc.line, got[0], got[1], got[2])
		}
	}
}

func TestRequestLineIsOneLine(t *testing.T) {
	deadline := time.UnixMilli(1_700_000_000_123)
	line, err := requestLine(Invocation{ExecutionID: "e\"1", Payload: json.RawMessage("{\n \"a\": \"x\\ny\"\n}"), Timeout: 1500 * time.Millisecond}, deadline)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"execution_id":"e\"1","trace_id":"","deadline_ms":1700000000123,"timeout_ms":1500,"payload":{"a":"x\ny"}}` + "\n"
	if string(line) != want {
		t.Errorf("got  %s\nwant %s", line, want)
	}
	if bytes.Count(line, []byte("\n")) != 1 || !json.Valid(line) {
		t.Errorf("not one JSON line: %q", line)
	}
}
