package server_test

// Warm concurrency, the bounded queue, one result per execution, and the
// runtime's restarts with several invocations in flight; real processes
// and real HTTP on loopback.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nanofaas.dev/devkit/receiver"
)

// answer is one /invoke answer.
type answer struct {
	code   int
	header http.Header
	body   string
}

// output is the test runtime's output in a result body.
type output struct {
	Success bool `json:"success"`
	Output  struct {
		Pid    int `json:"pid"`
		Active int `json:"active"`
	} `json:"output"`
	Error *struct{ Code, Message string } `json:"error"`
}

func (a answer) parse(t testing.TB) output {
	t.Helper()
	var o output
	if err := json.Unmarshal([]byte(a.body), &o); err != nil {
		t.Fatalf("answer %d %q is not a result: %v", a.code, a.body, err)
	}
	return o
}

// postAsync posts body to /invoke in a goroutine; the answer arrives on the
// returned channel.
func postAsync(t testing.TB, ts *testServer, body string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Post(ts.url+"/invoke", "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			ch <- answer{}
			return
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		ch <- answer{resp.StatusCode, resp.Header, b.String()}
	}()
	return ch
}

// waitMetrics waits until every series has its value in /metrics.
func (ts *testServer) waitMetrics(t testing.TB, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok := true
		for series, v := range want {
			if metricValue(t, ts, series) != v {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			got := map[string]int{}
			for series := range want {
				got[series] = metricValue(t, ts, series)
			}
			t.Fatalf("metrics never reached %v (now %v)", want, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pid runs a quick invocation and returns the pid of the runtime that ran it.
func (ts *testServer) pid(t testing.TB) int {
	t.Helper()
	_, _, body := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"which-pid","payload":1}`)
	return runtimePid(t, body)
}

const (
	inFlightSeries   = `watchdog_invocations_in_flight{function="unknown"}`
	queueDepthSeries = `watchdog_queue_depth{function="unknown"}`
)

// N parallel calls on a runtime that sleeps: exactly WARM_CONCURRENCY run
// at once (the runtime never sees more), the rest wait in the queue, and
// every one is answered with its own result.
func TestConcurrencyRunsNAtOnceAndQueuesTheRest(t *testing.T) {
	const slots, calls = 3, 8
	ts := start(t, fmt.Sprintf("WARM_CONCURRENCY=%d", slots))
	var answers []<-chan answer
	for i := range calls {
		answers = append(answers, postAsync(t, ts, fmt.Sprintf(`{"execution_id":"c-%d","payload":{"sleep_ms":400,"i":%d}}`, i, i)))
	}
	ts.waitMetrics(t, map[string]int{inFlightSeries: slots, queueDepthSeries: calls - slots})
	maxActive := 0
	for i, ch := range answers {
		a := <-ch
		o := a.parse(t)
		if a.code != http.StatusOK || !o.Success || !strings.Contains(a.body, fmt.Sprintf(`"execution_id":"c-%d"`, i)) {
			t.Errorf("call %d: %d %s", i, a.code, a.body)
		}
		maxActive = max(maxActive, o.Output.Active)
	}
	if maxActive != slots {
		t.Errorf("the runtime ran up to %d invocations at once, want exactly WARM_CONCURRENCY=%d", maxActive, slots)
	}
	ts.waitMetrics(t, map[string]int{inFlightSeries: 0, queueDepthSeries: 0})
	if n := metricValue(t, ts, `watchdog_queue_wait_seconds_count{function="unknown"}`); n != calls {
		t.Errorf("queue wait recorded %d times, want %d", n, calls)
	}
}

// A full queue answers 429 BUSY with Retry-After and a JSON error at once;
// /health stays 200 and says the queue is full; what waits is served.
func TestFullQueueAnswers429(t *testing.T) {
	ts := start(t, "WARM_CONCURRENCY=1", "WARM_QUEUE_SIZE=2")
	var answers []<-chan answer
	for i := range 3 {
		answers = append(answers, postAsync(t, ts, fmt.Sprintf(`{"execution_id":"q-%d","payload":{"sleep_ms":500}}`, i)))
	}
	ts.waitMetrics(t, map[string]int{inFlightSeries: 1, queueDepthSeries: 2})
	began := time.Now()
	code, h, body := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"over","payload":1}`)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, `"code":"BUSY"`) || !strings.Contains(body, "WARM_QUEUE_SIZE=2") {
		t.Errorf("past the queue: %d Retry-After=%q %s, want 429 BUSY with Retry-After", code, h.Get("Retry-After"), body)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("the refusal took %v: it waited instead of being refused at once", took)
	}
	resp, err := http.Get(ts.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var health map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || health["status"] != "ready" || health["queue_full"] != true {
		t.Errorf("/health with a full queue: %d %v, want 200 ready with queue_full", resp.StatusCode, health)
	}
	for i, ch := range answers {
		if a := <-ch; a.code != http.StatusOK {
			t.Errorf("queued call %d: %d %s", i, a.code, a.body)
		}
	}
	if n := metricValue(t, ts, `watchdog_rejected_requests_total{function="unknown",code="BUSY"}`); n != 1 {
		t.Errorf("BUSY rejections %d, want 1", n)
	}
}

// A call that waits longer than WARM_QUEUE_TIMEOUT_MS is answered 429
// QUEUE_TIMEOUT with Retry-After: it never ran, so there is no callback.
// The wait counts against the invocation's timeout: a call whose timeout
// is shorter than the queue's bound gets only the timeout's wait.
func TestQueueWaitIsBounded(t *testing.T) {
	recv, err := receiver.Start(receiver.Behaviour{})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	ts := start(t, "WARM_QUEUE_TIMEOUT_MS=300", "CALLBACK_URL="+recv.Base)
	first := postAsync(t, ts, `{"execution_id":"long","payload":{"sleep_ms":1500}}`)
	ts.waitMetrics(t, map[string]int{inFlightSeries: 1})
	for _, tc := range []struct {
		body   string
		atMost time.Duration
	}{
		{`{"execution_id":"waits","payload":1}`, 1200 * time.Millisecond},
		{`{"execution_id":"short","payload":1,"timeout_ms":100}`, 250 * time.Millisecond},
	} {
		began := time.Now()
		code, h, body := post(t, http.DefaultClient, ts.url+"/invoke", tc.body)
		took := time.Since(began)
		if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, `"code":"QUEUE_TIMEOUT"`) {
			t.Errorf("%s: %d %s, want 429 QUEUE_TIMEOUT with Retry-After", tc.body, code, body)
		}
		if took > tc.atMost {
			t.Errorf("%s: refused after %v, want at most %v", tc.body, took, tc.atMost)
		}
	}
	if a := <-first; a.code != http.StatusOK {
		t.Errorf("the long call: %d %s", a.code, a.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := recv.WaitFor(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	if n := len(recv.For("waits")) + len(recv.For("short")); n != 0 {
		t.Errorf("%d callbacks for calls that never ran", n)
	}
	if n := metricValue(t, ts, `watchdog_rejected_requests_total{function="unknown",code="QUEUE_TIMEOUT"}`); n != 2 {
		t.Errorf("QUEUE_TIMEOUT rejections %d, want 2", n)
	}
}

// SIGTERM (a cancelled context) with calls queued: the ones in flight
// complete, the queued ones are answered 503 SHUTTING_DOWN with
// Retry-After at once (none dropped silently), and the watchdog exits 0.
func TestStopWithAQueueRefusesTheQueuedAndCompletesTheRest(t *testing.T) {
	ts := start(t, "WARM_CONCURRENCY=2", "WARM_QUEUE_SIZE=8")
	var running, queued []<-chan answer
	for i := range 2 {
		running = append(running, postAsync(t, ts, fmt.Sprintf(`{"execution_id":"run-%d","payload":{"sleep_ms":800}}`, i)))
	}
	ts.waitMetrics(t, map[string]int{inFlightSeries: 2})
	for i := range 4 {
		queued = append(queued, postAsync(t, ts, fmt.Sprintf(`{"execution_id":"wait-%d","payload":1}`, i)))
	}
	ts.waitMetrics(t, map[string]int{queueDepthSeries: 4})
	ts.stop()
	for i, ch := range queued {
		a := <-ch
		if a.code != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, `"code":"SHUTTING_DOWN"`) {
			t.Errorf("queued call %d: %d %s, want 503 SHUTTING_DOWN with Retry-After", i, a.code, a.body)
		}
	}
	for i, ch := range running {
		if a := <-ch; a.code != http.StatusOK {
			t.Errorf("call %d in flight: %d %s, want 200", i, a.code, a.body)
		}
	}
	if code := <-ts.done; code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	ts.done <- 0
}

// The runtime dies with N invocations in flight: each of the N is answered
// with a FUNCTION_ERROR that says the runtime exited; then a new runtime
// serves again.
func TestRuntimeDeathWithNInFlightFailsEachThenServesAgain(t *testing.T) {
	const n = 3
	ts := start(t, fmt.Sprintf("WARM_CONCURRENCY=%d", n))
	pid := ts.pid(t)
	var answers []<-chan answer
	for i := range n {
		answers = append(answers, postAsync(t, ts, fmt.Sprintf(`{"execution_id":"d-%d","payload":{"sleep_ms":5000}}`, i)))
	}
	ts.waitMetrics(t, map[string]int{inFlightSeries: n})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i, ch := range answers {
		a := <-ch
		o := a.parse(t)
		if a.code != http.StatusInternalServerError || o.Error == nil || o.Error.Code != "FUNCTION_ERROR" || !strings.Contains(o.Error.Message, "runtime exited") {
			t.Errorf("call %d in flight when the runtime died: %d %s", i, a.code, a.body)
		}
	}
	ts.waitReady(t)
	if again := ts.pid(t); again == pid || again == 0 {
		t.Errorf("after the death the runtime pid is %d (was %d)", again, pid)
	}
}

// A timeout of one call restarts the runtime (its state is unknown); the
// other call in flight on it is answered with a FUNCTION_ERROR that names
// the call that timed out, never silently killed; then the new runtime
// serves.
func TestTimeoutOfOneCallReportsTheOthersInFlight(t *testing.T) {
	ts := start(t, "WARM_CONCURRENCY=2")
	pid := ts.pid(t)
	other := postAsync(t, ts, `{"execution_id":"bystander","payload":{"sleep_ms":5000}}`)
	ts.waitMetrics(t, map[string]int{inFlightSeries: 1})
	slow := postAsync(t, ts, `{"execution_id":"too-slow","payload":{"sleep_ms":5000},"timeout_ms":300}`)
	a := <-slow
	if a.code != http.StatusGatewayTimeout {
		t.Errorf("the call that timed out: %d %s, want 504", a.code, a.body)
	}
	b := <-other
	o := b.parse(t)
	if b.code != http.StatusInternalServerError || o.Error == nil || o.Error.Code != "FUNCTION_ERROR" ||
		!strings.Contains(o.Error.Message, `the runtime was restarted while this invocation was in flight: execution "too-slow"`) {
		t.Errorf("the other call in flight: %d %s", b.code, b.body)
	}
	ts.waitReady(t)
	if again := ts.pid(t); again == pid {
		t.Errorf("the runtime (pid %d) was not restarted after a timeout", pid)
	}
	if n := metricValue(t, ts, `watchdog_runtime_restarts_total{function="unknown",reason="timeout"}`); n != 1 {
		t.Errorf("%d restarts for a timeout, want 1", n)
	}
}

// WARM_MAX_INVOCATIONS with calls in flight: the runtime takes exactly
// that many, finishes them all, and only then restarts.
func TestMaxInvocationsWaitsForTheCallsInFlight(t *testing.T) {
	ts := start(t, "WARM_CONCURRENCY=2", "WARM_MAX_INVOCATIONS=2")
	a := postAsync(t, ts, `{"execution_id":"m-1","payload":{"sleep_ms":400}}`)
	b := postAsync(t, ts, `{"execution_id":"m-2","payload":{"sleep_ms":400}}`)
	ra, rb := <-a, <-b
	pa, pb := ra.parse(t), rb.parse(t)
	if ra.code != 200 || rb.code != 200 || pa.Output.Pid != pb.Output.Pid {
		t.Fatalf("two calls in flight on one runtime: %d %s / %d %s", ra.code, ra.body, rb.code, rb.body)
	}
	if again := ts.pid(t); again == pa.Output.Pid {
		t.Errorf("the third call reached the runtime that served WARM_MAX_INVOCATIONS=2 (pid %d)", again)
	}
}

// Per-invocation processes (WARM=true with STDIO or FILE) run
// WARM_CONCURRENCY at once; with FILE each slot has its own files, so each
// call gets its own output.
func TestPerInvocationProcessesRunSideBySide(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"STDIO", []string{"EXECUTION_MODE=STDIO", `WATCHDOG_CMD=sh -c 'sleep 0.4; cat'`}},
		{"FILE", []string{"EXECUTION_MODE=FILE", `WATCHDOG_CMD=sh -c 'sleep 0.4; cp "$INPUT_FILE" "$OUTPUT_FILE"'`,
			"INPUT_FILE=" + filepath.Join(dir, "in.json"), "OUTPUT_FILE=" + filepath.Join(dir, "out.json")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startPerCall(t, append(tc.env, "WARM_CONCURRENCY=3")...)
			var answers []<-chan answer
			for i := range 5 {
				answers = append(answers, postAsync(t, ts, fmt.Sprintf(`{"execution_id":"p-%d","payload":{"i":%d}}`, i, i)))
			}
			ts.waitMetrics(t, map[string]int{inFlightSeries: 3, queueDepthSeries: 2})
			for i, ch := range answers {
				a := <-ch
				if a.code != http.StatusOK || !strings.Contains(a.body, fmt.Sprintf(`"output":{"i":%d}`, i)) {
					t.Errorf("call %d: %d %s", i, a.code, a.body)
				}
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("%s left behind", e.Name())
	}
}

// "Expect: 100-continue" with no body after it holds no slot: the only
// slot (and no queue) stays free for the next call, which runs at once.
func TestExpectContinueWithoutBodyHoldsNoSlot(t *testing.T) {
	ts := startPerCall(t, "WARM_QUEUE_SIZE=0")
	c := ts.dial(t)
	fmt.Fprint(c, "POST /invoke HTTP/1.1\r\nHost: x\r\nX-Execution-Id: never\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(line, " 100 ") {
		t.Fatalf("the server did not ask for the body: %q %v", line, err)
	}
	for i := range 3 {
		began := time.Now()
		code, _, body := post(t, http.DefaultClient, ts.url+"/invoke", fmt.Sprintf(`{"execution_id":"after-%d","payload":1}`, i))
		if code != http.StatusOK {
			t.Errorf("a call while a body is awaited: %d %s, want 200", code, body)
		}
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("a call while a body is awaited took %v", took)
		}
	}
}

// Exactly one result per execution in server mode, the watchdog's, every
// time: a runtime that posts its own callback like the nanofaas SDKs
// (CALLBACK_URL from its environment, the execution id from
// X-Execution-Id) never sees CALLBACK_URL. Both request forms, a warm HTTP
// runtime and per-invocation STDIO processes, ten calls each.
func TestOneResultPerExecutionWithAReportingRuntime(t *testing.T) {
	fixture, err := filepath.Abs("../../../fixtures/runtimes/sdk_runtime.py")
	if err != nil {
		t.Fatal(err)
	}
	recv, err := receiver.Start(receiver.Behaviour{})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	for _, tc := range []struct {
		name string
		ts   func(t *testing.T) *testServer
	}{
		{"warm-http", func(t *testing.T) *testServer {
			return serve(t, []string{"EXECUTION_MODE=WARM", "WARM_PORT=1", "WATCHDOG_CMD=python3 " + fixture + " http",
				fmt.Sprintf("RUNTIME_URL=http://127.0.0.1:%d/invoke", freePort(t)), "CALLBACK_URL=" + recv.Base,
				"WARM_CONCURRENCY=4", "WARM_IDLE_TIMEOUT_MS=0", "LOG_LEVEL=warn", "PATH=" + os.Getenv("PATH")}, false, 10*time.Second)
		}},
		{"per-invocation-stdio", func(t *testing.T) *testServer {
			return startPerCall(t, "WATCHDOG_CMD=python3 "+fixture+" stdio", "CALLBACK_URL="+recv.Base)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := tc.ts(t)
			var ids []string
			var wg sync.WaitGroup
			for i := range 10 {
				id := fmt.Sprintf("%s-%d", tc.name, i)
				ids = append(ids, id)
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodPost, ts.url+"/invoke", strings.NewReader(`{"n":1}`))
					if i%2 == 0 {
						req.Header.Set("X-Execution-Id", id)
					} else {
						req, _ = http.NewRequest(http.MethodPost, ts.url+"/invoke", strings.NewReader(`{"execution_id":"`+id+`","payload":{"n":1}}`))
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("%s: %d", id, resp.StatusCode)
					}
				}()
			}
			wg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, id := range ids {
				if _, err := recv.WaitFor(ctx, id); err != nil {
					t.Fatalf("%s: %v", id, err)
				}
			}
			// The fixture posts before it answers; the watchdog posts after:
			// every callback of either kind has arrived by now.
			for _, id := range ids {
				calls := recv.For(id)
				if len(calls) != 1 || strings.Contains(string(calls[0].Body), `"sdk":true`) ||
					!strings.Contains(string(calls[0].Body), `"sdk_saw_callback_url":false`) {
					t.Errorf("%s: %d callbacks, want exactly the watchdog's: %v", id, len(calls), calls)
				}
			}
		})
	}
}

// The wait for a slot counts against the invocation's timeout: a call
// that waited most of its timeout gets only what is left to run, and its
// TIMEOUT says how the time went.
func TestQueueWaitCountsAgainstTheTimeout(t *testing.T) {
	ts := start(t)
	first := postAsync(t, ts, `{"execution_id":"ahead","payload":{"sleep_ms":500}}`)
	ts.waitMetrics(t, map[string]int{inFlightSeries: 1})
	began := time.Now()
	code, _, body := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"behind","payload":{"sleep_ms":500},"timeout_ms":800}`)
	took := time.Since(began)
	if code != http.StatusGatewayTimeout || !regexpMatch(`"code":"TIMEOUT","message":"Function exceeded timeout of 800ms \(\d+ms of it waiting in the queue for a slot, \d+ms running\)"`, body) {
		t.Errorf("a call that waited most of its timeout: %d %s, want 504 TIMEOUT that counts the wait", code, body)
	}
	if took > 2*time.Second {
		t.Errorf("the call took %v end to end, with a timeout of 800ms", took)
	}
	if a := <-first; a.code != http.StatusOK {
		t.Errorf("the call ahead: %d %s", a.code, a.body)
	}
}

// WARM_IDLE_TIMEOUT_MS never stops the watchdog while calls run: with two
// in flight longer than the idle timeout, both complete, and the watchdog
// stops (exit 0) only once it has been idle that long after them.
func TestIdleShutdownWaitsForTheCallsInFlight(t *testing.T) {
	ts := start(t, "WARM_CONCURRENCY=2", "WARM_IDLE_TIMEOUT_MS=300")
	a := postAsync(t, ts, `{"execution_id":"i-1","payload":{"sleep_ms":800}}`)
	b := postAsync(t, ts, `{"execution_id":"i-2","payload":{"sleep_ms":800}}`)
	for i, ch := range []<-chan answer{a, b} {
		if r := <-ch; r.code != http.StatusOK {
			t.Errorf("call %d in flight past the idle timeout: %d %s", i, r.code, r.body)
		}
	}
	ended := time.Now()
	select {
	case code := <-ts.done:
		t.Fatalf("the watchdog stopped (exit %d) with calls in flight", code)
	default:
	}
	select {
	case code := <-ts.done:
		if code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		if idle := time.Since(ended); idle < 250*time.Millisecond {
			t.Errorf("stopped %v after the last call ended, before WARM_IDLE_TIMEOUT_MS=300", idle)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watchdog did not stop when idle")
	}
	ts.done <- 0
}
