package server_test

// Fault injection against the server mode's HTTP surface: hostile or broken
// clients of /invoke (slowloris, huge headers, floods, disconnects, large
// concurrent uploads), with real sockets on loopback.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/internal/server"
)

// startPerCall runs a server-mode watchdog with the STDIO protocol (a
// process per invocation, cat by default: the payload is the output), for
// the tests that need no warm runtime.
func startPerCall(t testing.TB, extra ...string) *testServer {
	t.Helper()
	return startPerCallWith(t, server.DefaultOptions(), extra...)
}

// startPerCallWith is startPerCall with the server's options.
func startPerCallWith(t testing.TB, opts server.Options, extra ...string) *testServer {
	t.Helper()
	env := append([]string{
		"WARM=true",
		"EXECUTION_MODE=STDIO",
		"WATCHDOG_CMD=cat",
		"KILL_GRACE_MS=200",
		"WARM_IDLE_TIMEOUT_MS=0",
		"LOG_LEVEL=warn",
		"PATH=" + os.Getenv("PATH"),
	}, extra...)
	return serveWith(t, env, false, 15*time.Second, opts)
}

// httpTimeouts are the default options with the HTTP server's timeouts
// shortened for a fault test.
func httpTimeouts(readHeader, read, write, idle time.Duration) server.Options {
	o := server.DefaultOptions()
	o.ReadHeaderTimeout, o.ReadTimeout, o.WriteTimeout, o.IdleTimeout = readHeader, read, write, idle
	return o
}

func (ts *testServer) addr() string { return strings.TrimPrefix(ts.url, "http://") }

// rawRequest opens a connection and writes head (request line and headers,
// without the blank line that ends them, when more is to follow).
func (ts *testServer) dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", ts.addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed waits until the server closes c (a read returns EOF or a reset),
// reading and discarding what it sends first, and returns how long it took.
func waitClosed(t testing.TB, c net.Conn, bound time.Duration) (time.Duration, string) {
	t.Helper()
	began := time.Now()
	_ = c.SetReadDeadline(began.Add(bound))
	data, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server did not close the connection within %v", bound)
	}
	return time.Since(began), string(data)
}

func metricValue(t testing.TB, ts *testServer, series string) int {
	t.Helper()
	resp, err := http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}

// Uploads that arrive together are not each buffered beyond the queue: a
// place is taken once a body starts and before it is read, so N concurrent
// uploads cost at most WARM_CONCURRENCY + WARM_QUEUE_SIZE bodies of memory,
// not N (the slot used to be taken after reading, and 30 clients
// announcing 4 MiB each made the watchdog allocate 120 MiB at once).
func TestFaultConcurrentUploadsDoNotMultiplyMemory(t *testing.T) {
	const limit = 4 << 20
	const clients = 30
	const places = 3 // WARM_CONCURRENCY=1 + WARM_QUEUE_SIZE=2
	ts := startPerCall(t, "MAX_PAYLOAD_BYTES="+strconv.Itoa(limit), "WARM_QUEUE_SIZE=2")
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	conns := make([]net.Conn, clients)
	for i := range conns {
		c := ts.dial(t)
		conns[i] = c
		// Announce a body of the largest size, send a little of it, stall.
		fmt.Fprintf(c, "POST /invoke HTTP/1.1\r\nHost: x\r\nX-Execution-Id: up-%d\r\nContent-Length: %d\r\n\r\n[", i, limit)
	}
	// Wait until the server has dealt with every upload: all but the ones
	// holding a place are refused with 429 as soon as their body starts.
	// (Had it buffered each body before taking a place, none would be
	// refused while they stall, and this wait fails.)
	answers := make(chan string, clients)
	for _, c := range conns {
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			answers <- line
		}()
	}
	busy := 0
	timeout := time.After(20 * time.Second)
	for busy < clients-places {
		select {
		case line := <-answers:
			if !strings.Contains(line, " 429 ") {
				t.Fatalf("a stalled upload got %q, want a 429 or nothing", line)
			}
			busy++
		case <-timeout:
			t.Fatalf("%d of %d stalled uploads were refused with 429 within 20s, want %d", busy, clients, clients-places)
		}
	}
	// Every upload is now inside the server: refused, or holding a place
	// with its body started.
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	grown := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d MiB with %d uploads of %d MiB in progress", grown>>20, clients, limit>>20)
	if grown > (places+2)*limit {
		t.Errorf("heap grew by %d MiB with %d concurrent uploads: each is buffered at once (want about %d bodies, %d MiB)", grown>>20, clients, places, places*limit>>20)
	}
	// The ones holding a place got no answer; closing them ends their reads.
	for _, c := range conns {
		c.Close()
	}
	for range places {
		if line := <-answers; line != "" {
			t.Errorf("an upload holding a place got %q before its body was sent, want nothing", line)
		}
	}
	// The stalled uploads that held the places are gone: they are free again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, body := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"after","payload":{"ok":1}}`)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the uploads went away: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Slowloris: a client that sends its headers a byte at a time is cut off at
// the header timeout, and meanwhile the server answers everyone else.
func TestFaultSlowlorisHeadersAreCutOff(t *testing.T) {
	ts := startPerCallWith(t, httpTimeouts(400*time.Millisecond, 2*time.Second, 2*time.Second, 5*time.Second))
	c := ts.dial(t)
	fmt.Fprint(c, "POST /invoke HTTP/1.1\r\nHost: x\r\n")
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := c.Write([]byte("X")); err != nil {
					return
				}
			}
		}
	}()
	defer close(stop)
	code, _, _ := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"meanwhile","payload":1}`)
	if code != http.StatusOK {
		t.Errorf("a normal request during the slowloris got %d", code)
	}
	took, _ := waitClosed(t, c, 5*time.Second)
	if took > 2*time.Second {
		t.Errorf("the slowloris connection lived %v, want about the 400ms header timeout", took)
	}
}

// A body that trickles in holds the slot only until the read timeout; then
// the slot is free and the next invocation runs.
func TestFaultSlowBodyIsCutOffAndFreesTheSlot(t *testing.T) {
	ts := startPerCallWith(t, httpTimeouts(time.Second, 600*time.Millisecond, 2*time.Second, 5*time.Second), "WARM_QUEUE_SIZE=0")
	// While it trickles, it holds the only place: a request then is
	// refused with 429. Probe until one is; a probe that took the place
	// just as the slow upload's body started made the server refuse the
	// upload instead (the test's doing, not the server's): start over.
	var (
		c      net.Conn
		began  time.Time
		closed chan string
	)
	for attempt := 1; c == nil; attempt++ {
		c, began, closed = startSlowUpload(t, ts)
	probe:
		for {
			select {
			case answer := <-closed:
				if !strings.HasPrefix(answer, "HTTP/1.1 429 ") || attempt == 5 {
					t.Fatalf("the slow upload ended (%.60q) before any request made during it was refused with 429", answer)
				}
				c = nil
				break probe
			default:
			}
			code, _, body := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"during","payload":1}`)
			if code == http.StatusTooManyRequests {
				break probe
			}
			if code != http.StatusOK {
				t.Fatalf("during the slow upload: %d %s, want 429 (or 200 before its body reached the server)", code, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	answer := <-closed
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the slow upload was cut off after %v, want about the 600ms read timeout", took)
	}
	if answer != "" && !strings.Contains(answer, " 400 ") {
		t.Errorf("the slow upload got %q, want nothing or a 400", answer)
	}
	if code, _, body := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"after","payload":1}`); code != http.StatusOK {
		t.Errorf("after the slow upload was cut off: %d %s, want 200", code, body)
	}
}

// startSlowUpload starts an upload whose body trickles in a byte every
// 50ms; closed gets what the server answered once it closes the
// connection.
func startSlowUpload(t *testing.T, ts *testServer) (net.Conn, time.Time, chan string) {
	c := ts.dial(t)
	fmt.Fprint(c, "POST /invoke HTTP/1.1\r\nHost: x\r\nX-Execution-Id: slow-body\r\nContent-Length: 1000\r\n\r\n[")
	began := time.Now()
	go func() {
		for i := 0; i < 100; i++ {
			time.Sleep(50 * time.Millisecond)
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	closed := make(chan string, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		data, _ := io.ReadAll(c)
		closed <- string(data)
	}()
	return c, began, closed
}

// Headers over the limit are refused by net/http with 431 before the
// watchdog reads them; the server goes on.
func TestFaultHugeHeadersAreRefused(t *testing.T) {
	ts := startPerCall(t)
	c := ts.dial(t)
	fmt.Fprintf(c, "POST /invoke HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\nContent-Length: 2\r\n\r\n{}", strings.Repeat("b", server.DefaultOptions().MaxHeaderBytes+8192))
	_, answer := waitClosed(t, c, 5*time.Second)
	if !strings.HasPrefix(answer, "HTTP/1.1 431 ") {
		t.Errorf("huge headers got %.60q, want 431", answer)
	}
	if code, _, _ := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"next","payload":1}`); code != http.StatusOK {
		t.Errorf("the next request got %d", code)
	}
}

// A flood (2000 requests over 50 keep-alive connections) against a warm
// runtime: every request gets either its own result (200, its payload echoed
// by the runtime) or 429 BUSY; nothing else, no crash, no transport error;
// the metrics agree with what the clients saw; nothing leaks.
func TestFaultFloodGetsResultsOr429(t *testing.T) {
	ts := start(t)
	baseOK := metricValue(t, ts, `watchdog_invocations_total{function="unknown",mode="WARM",success="true"}`)
	baseBusy := metricValue(t, ts, `watchdog_rejected_requests_total{function="unknown",code="BUSY"}`)
	goroutines := runtime.NumGoroutine()

	const conns, each = 50, 40
	var ok, busy, other atomic.Int64
	errs := make(chan string, conns*each)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for i := range each {
				id := fmt.Sprintf("f-%d-%d", c, i)
				resp, err := client.Post(ts.url+"/invoke", "application/json",
					strings.NewReader(fmt.Sprintf(`{"execution_id":%q,"payload":{"id":%q}}`, id, id)))
				if err != nil {
					errs <- err.Error()
					other.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"payload":{"id":"`+id+`"}`) &&
					strings.HasPrefix(string(body), `{"execution_id":"`+id+`","success":true`):
					ok.Add(1)
				case resp.StatusCode == http.StatusTooManyRequests && strings.Contains(string(body), `"code":"BUSY"`):
					busy.Add(1)
				default:
					errs <- fmt.Sprintf("%d %s", resp.StatusCode, body)
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("unexpected answer: %.200s", e)
		break
	}
	t.Logf("flood: %d results, %d BUSY, %d other", ok.Load(), busy.Load(), other.Load())
	if ok.Load()+busy.Load() != conns*each || ok.Load() == 0 {
		t.Errorf("%d results + %d BUSY of %d requests", ok.Load(), busy.Load(), conns*each)
	}
	if got := metricValue(t, ts, `watchdog_invocations_total{function="unknown",mode="WARM",success="true"}`) - baseOK; got != int(ok.Load()) {
		t.Errorf("metrics count %d invocations, the clients got %d results", got, ok.Load())
	}
	if got := metricValue(t, ts, `watchdog_rejected_requests_total{function="unknown",code="BUSY"}`) - baseBusy; got != int(busy.Load()) {
		t.Errorf("metrics count %d BUSY, the clients got %d", got, busy.Load())
	}
	if code, _, _ := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"after-flood","payload":1}`); code != http.StatusOK {
		t.Errorf("after the flood: %d", code)
	}
	// The flood's connections are gone; so are their goroutines.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines+10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines+10 {
		t.Errorf("%d goroutines after the flood, %d before", n, goroutines)
	}
}

// A client that disconnects while its invocation runs does not leave the
// runtime broken: the invocation completes, its result still reaches the
// callback, the slot is freed, and the next call runs on the same runtime.
func TestFaultClientDisconnectsMidInvocation(t *testing.T) {
	recv, err := receiver.Start(receiver.Behaviour{})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	ts := start(t)
	_, _, first := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"warm-up","payload":1}`)
	pid := runtimePid(t, first)

	c := ts.dial(t)
	body := fmt.Sprintf(`{"execution_id":"gone","callback_url":%q,"payload":{"sleep_ms":400}}`, recv.Base)
	fmt.Fprintf(c, "POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	ts.waitInFlight(t)
	c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	delivered, err := recv.WaitDelivered(ctx, 1)
	if err != nil {
		t.Fatalf("the abandoned invocation's result never reached the callback: %v", err)
	}
	if b := string(delivered[0].Body); !strings.Contains(b, `"success":true`) || !strings.Contains(b, `"sleep_ms":400`) {
		t.Errorf("callback body %s", b)
	}
	code, _, next := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"next","payload":2}`)
	if code != http.StatusOK || runtimePid(t, next) != pid {
		t.Errorf("after the disconnect: %d %s, want 200 from the same runtime (pid %d)", code, next, pid)
	}
	if n := metricValue(t, ts, `watchdog_runtime_restarts_total{function="unknown",reason="exited"}`); n != 0 {
		t.Errorf("the runtime was restarted %d times", n)
	}
}

func runtimePid(t testing.TB, body string) int {
	t.Helper()
	var res struct {
		Output struct {
			Pid int `json:"pid"`
		} `json:"output"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Output.Pid == 0 {
		t.Fatalf("no runtime pid in %s", body)
	}
	return res.Output.Pid
}

// CALLBACK_ALLOWED_PREFIXES: a callback_url from a request outside the
// prefixes is refused with 400 before anything runs or is sent; one inside
// is used; CALLBACK_URL from the environment is trusted even outside them.
func TestFaultCallbackAllowList(t *testing.T) {
	allowed, err := receiver.Start(receiver.Behaviour{})
	if err != nil {
		t.Fatal(err)
	}
	defer allowed.Close()
	trusted, err := receiver.Start(receiver.Behaviour{})
	if err != nil {
		t.Fatal(err)
	}
	defer trusted.Close()
	other, err := receiver.Start(receiver.Behaviour{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ts := startPerCall(t, "CALLBACK_ALLOWED_PREFIXES="+allowed.Base, "CALLBACK_URL="+trusted.Base)

	for _, cb := range []string{
		other.Base,
		"http://169.254.169.254/latest/meta-data/",
		allowed.Base + "/../../admin",
		allowed.Base + "/%2e%2e/%2e%2e/admin",
		strings.Replace(allowed.Base, "127.0.0.1", "localhost", 1),
		allowed.Base + "X",
	} {
		code, _, body := post(t, http.DefaultClient, ts.url+"/invoke", fmt.Sprintf(`{"execution_id":"e1","callback_url":%q,"payload":1}`, cb))
		if code != http.StatusBadRequest || !strings.Contains(body, `"code":"BAD_REQUEST"`) ||
			!strings.Contains(body, "is not under any of the URL prefixes in CALLBACK_ALLOWED_PREFIXES") {
			t.Errorf("callback_url %s: %d %s, want 400 naming CALLBACK_ALLOWED_PREFIXES", cb, code, body)
		}
	}
	if n := metricValue(t, ts, `watchdog_invocations_total{function="unknown",mode="STDIO",success="true"}`); n != 0 {
		t.Errorf("%d invocations ran for refused requests", n)
	}
	if n := metricValue(t, ts, `watchdog_rejected_requests_total{function="unknown",code="BAD_REQUEST"}`); n != 6 {
		t.Errorf("%d refusals counted, want 6", n)
	}
	// An id that would walk out of the prefix once appended is refused too.
	code, _, body := post(t, http.DefaultClient, ts.url+"/invoke", fmt.Sprintf(`{"execution_id":"../../../admin","callback_url":%q,"payload":1}`, allowed.Base))
	if code != http.StatusBadRequest {
		t.Errorf("traversing execution id: %d %s", code, body)
	}

	code, _, body = post(t, http.DefaultClient, ts.url+"/invoke", fmt.Sprintf(`{"execution_id":"in","callback_url":%q,"payload":1}`, allowed.Base+"/"))
	if code != http.StatusOK {
		t.Fatalf("allowed callback_url: %d %s", code, body)
	}
	code, _, _ = post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"env","payload":2}`)
	if code != http.StatusOK {
		t.Fatalf("no callback_url: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d, err := allowed.WaitDelivered(ctx, 1); err != nil || d[0].Path != "/v1/internal/executions/in:complete" {
		t.Errorf("allowed receiver: %v %v", d, err)
	}
	if d, err := trusted.WaitDelivered(ctx, 1); err != nil || d[0].Path != "/v1/internal/executions/env:complete" {
		t.Errorf("CALLBACK_URL receiver: %v %v", d, err)
	}
	// Stop the watchdog: it exits only once every callback it ever
	// registered has been sent (or given up), so nothing can arrive later.
	ts.stop()
	if code := <-ts.done; code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	ts.done <- 0
	if n := len(other.Calls()); n != 0 {
		t.Errorf("the receiver outside the prefixes got %d requests", n)
	}
	if hasRecord(records(t, ts.logs.String()), map[string]any{"undelivered": true}) {
		t.Errorf("a result was given up at shutdown; want every callback sent:\n%s", ts.logs.String())
	}
}

// A control plane that hangs does not make pending callbacks pile up: past
// the bound, results are logged whole as undelivered at once (nothing is
// lost) and counted, and the number of goroutines stays flat.
func TestFaultPendingCallbacksAreBounded(t *testing.T) {
	opts := server.DefaultOptions()
	opts.MaxPendingDeliveries, opts.MaxPendingBytes = 8, 1<<20
	opts.DeliveryDrainTimeout = 200 * time.Millisecond
	recv, err := receiver.Start(receiver.Behaviour{FailFirst: -1, Hang: true})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	ts := startPerCallWith(t, opts, "CALLBACK_URL="+recv.Base, "CALLBACK_TIMEOUT_MS=60000", "CALLBACK_ATTEMPTS=1", "LOG_LEVEL=info")
	before := runtime.NumGoroutine()
	const n = 60
	for i := range n {
		code, _, _ := post(t, http.DefaultClient, ts.url+"/invoke", fmt.Sprintf(`{"execution_id":"p-%d","payload":{"i":%d}}`, i, i))
		if code != http.StatusOK {
			t.Fatalf("invocation %d: %d", i, code)
		}
	}
	grown := runtime.NumGoroutine() - before
	t.Logf("%d goroutines more after %d invocations with a hanging callback", grown, n)
	if grown > 8*6 {
		t.Errorf("goroutines grew by %d for %d pending callbacks bounded at 8", grown, n)
	}
	recs := records(t, ts.logs.String())
	shed := len(matching(recs, map[string]any{"msg": "callback undelivered", "undelivered": true,
		"error": regexp.MustCompile(`^not attempted: 8 callbacks are already pending`)}))
	if shed != n-8 {
		t.Errorf("%d results logged as undelivered at once, want %d", shed, n-8)
	}
	if !hasRecord(recs, map[string]any{"msg": "callback undelivered", "execution_id": "p-59", "undelivered": true,
		"result.success": true, "result.output": map[string]any{"i": 59}}) {
		t.Error("the last result is not in the log whole")
	}
	if got := metricValue(t, ts, `watchdog_callback_failures_total{function="unknown"}`); got != n-8 {
		t.Errorf("callback failures %d, want %d", got, n-8)
	}
}

// Payloads and outputs never reach the log at info level: not the payload,
// not the output, not the excerpt of a refused output (which the caller
// does get, in the result).
func TestFaultLogsCarryNoPayloadOrOutput(t *testing.T) {
	ts := startPerCall(t, "LOG_LEVEL=info", `WATCHDOG_CMD=sh -c 'cat >/dev/null; echo SECRET-OUTPUT-1 not json'`)
	code, _, body := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"secret","payload":{"k":"SECRET-PAYLOAD-1"}}`)
	if code != http.StatusInternalServerError || !strings.Contains(body, "SECRET-OUTPUT-1") {
		t.Fatalf("%d %s, want a FUNCTION_ERROR quoting the output to the caller", code, body)
	}
	// The invocation's record is written just after the answer.
	finished := map[string]any{"msg": "invocation finished", "execution_id": "secret"}
	logs := ts.logs.String()
	for deadline := time.Now().Add(3 * time.Second); !hasRecord(records(t, logs), finished) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		logs = ts.logs.String()
	}
	finished["message"] = "Invalid JSON in stdout: the function must produce one JSON document, got (output not logged)"
	if !hasRecord(records(t, logs), finished) {
		t.Errorf("no invocation record with a redacted message:\n%s", logs)
	}
	if strings.Contains(logs, "SECRET-") {
		t.Errorf("the log carries the payload or the output:\n%s", logs)
	}
}

// dialIdle opens a connection and reports whether it holds one of the
// server's connection slots: a connection past WARM_MAX_CONNECTIONS is
// answered at once, one that holds a slot hears nothing until it speaks.
func dialIdle(t testing.TB, ts *testServer) (net.Conn, bool) {
	t.Helper()
	c := ts.dial(t)
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		_ = c.SetReadDeadline(time.Time{})
		return c, true
	}
	c.Close()
	return nil, false
}

// holdSlots opens n connections that each hold a slot. A connection the
// test closed a moment ago may not have given its slot back yet (the server
// sees the close asynchronously), so a refused one is tried again.
func holdSlots(t testing.TB, ts *testServer, n int) []net.Conn {
	t.Helper()
	var held []net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for len(held) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d connections got a slot within 10s", len(held), n)
		}
		if c, ok := dialIdle(t, ts); ok {
			held = append(held, c)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return held
}

// getFresh GETs url on a new connection, closed afterwards, and retries
// while the server turns it away for want of a free connection slot.
func getFresh(t testing.TB, url string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"code":"TOO_MANY_CONNECTIONS"`) || time.Now().After(deadline) {
			return resp.StatusCode, string(body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With WARM_MAX_CONNECTIONS=3 and three idle connections open, a fourth
// connection is answered at once with 503 TOO_MANY_CONNECTIONS (a JSON
// error, Retry-After, Connection: close) and closed; it is counted and
// logged. Once one of the three closes, a new connection is served.
func TestFaultConnectionCapRefusesPastTheCap(t *testing.T) {
	ts := startPerCall(t, "WARM_MAX_CONNECTIONS=3")
	http.DefaultClient.CloseIdleConnections() // waitReady's keep-alive connection holds a slot
	held := holdSlots(t, ts, 3)

	c := ts.dial(t)
	took, answer := waitClosed(t, c, 3*time.Second)
	if took > time.Second {
		t.Errorf("the refusal took %v", took)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
	if err != nil {
		t.Fatalf("the refusal is not an HTTP answer: %v: %q", err, answer)
	}
	body, _ := io.ReadAll(resp.Body)
	want := `{"error":{"code":"TOO_MANY_CONNECTIONS","message":"the watchdog already has WARM_MAX_CONNECTIONS=3 connections open; retry after a second, and reuse keep-alive connections"}}`
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != want ||
		resp.Header.Get("Retry-After") != "1" || !resp.Close || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("refusal: %d %v %s", resp.StatusCode, resp.Header, body)
	}

	// A request sent on a refused connection gets the same answer, not a reset.
	c = ts.dial(t)
	if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, answer := waitClosed(t, c, 3*time.Second); !strings.HasPrefix(answer, "HTTP/1.1 503 ") {
		t.Errorf("a request on a refused connection: %q", answer)
	}

	// One of the three closes: its slot is free again.
	held[0].Close()
	if code, body := getFresh(t, ts.url+"/health"); code != http.StatusOK {
		t.Errorf("after a connection closed: %d %s", code, body)
	}
	for _, c := range held[1:] {
		c.Close()
	}
	_, metricsText := getFresh(t, ts.url+"/metrics")
	if !regexpMatch(`watchdog_rejected_requests_total\{function="unknown",code="TOO_MANY_CONNECTIONS"\} [1-9]`, metricsText) {
		t.Errorf("refusals not counted:\n%s", metricsText)
	}
	if n := strings.Count(ts.logs.String(), "refusing connections"); n != 1 {
		t.Errorf("%d log lines about refused connections, want 1 (at most one per 10s):\n%s", n, ts.logs.String())
	}
}

// A flood of 300 connections against a cap of 5: each is answered 503 or
// closed, none hangs; afterwards every slot is free, the server serves,
// and no goroutine is left.
func TestFaultConnectionFloodPastTheCap(t *testing.T) {
	ts := startPerCall(t, "WARM_MAX_CONNECTIONS=5")
	http.DefaultClient.CloseIdleConnections()
	goroutines := runtime.NumGoroutine()
	held := holdSlots(t, ts, 5)

	var refused, closed atomic.Int64
	var wg sync.WaitGroup
	for range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", ts.addr(), 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			data, err := io.ReadAll(c)
			switch {
			case strings.HasPrefix(string(data), "HTTP/1.1 503 "):
				refused.Add(1)
			case len(data) == 0 && !isTimeout(err):
				closed.Add(1) // past the refusals being written at once: closed unanswered
			default:
				t.Errorf("a connection past the cap got %q (%v)", data, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("flood: %d answered 503, %d closed unanswered", refused.Load(), closed.Load())
	if refused.Load() == 0 {
		t.Error("no connection was answered 503")
	}
	for _, c := range held {
		c.Close()
	}
	held = holdSlots(t, ts, 5) // every slot came back
	for _, c := range held {
		c.Close()
	}
	if code, body := getFresh(t, ts.url+"/health"); code != http.StatusOK {
		t.Errorf("after the flood: %d %s", code, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines+10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines+10 {
		t.Errorf("%d goroutines after the flood, %d before", n, goroutines)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
