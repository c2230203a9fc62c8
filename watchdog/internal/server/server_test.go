package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"nanofaas.dev/devkit/freeport"
	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/callback"
	"nanofaas.dev/watchdog/internal/logging"
	"nanofaas.dev/watchdog/internal/process"
	"nanofaas.dev/watchdog/internal/protocol"
	"nanofaas.dev/watchdog/internal/server"
	"nanofaas.dev/watchdog/procio"
)

// runtimeEnv makes the test binary act as the warm HTTP runtime: a Go
// server is quicker to start and to answer than a Python fixture, which
// keeps these tests fast and the overhead benchmark honest.
const runtimeEnv = "SERVER_TEST_RUNTIME"

func TestMain(m *testing.M) {
	if os.Getenv(runtimeEnv) != "" {
		runRuntime()
		return
	}
	os.Exit(m.Run())
}

// runRuntime serves /health and /invoke on $PORT, requests in parallel.
// /invoke answers the payload with the pid and the number of invocations
// it was running at once when this one arrived (active), after sleeping
// payload.sleep_ms when given.
func runRuntime() {
	pid := strconv.Itoa(os.Getpid())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	var active atomic.Int64
	mux.HandleFunc("POST /invoke", func(w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		defer active.Add(-1)
		body, _ := io.ReadAll(r.Body)
		var p struct {
			SleepMs int `json:"sleep_ms"`
		}
		if json.Unmarshal(body, &p) == nil && p.SleepMs > 0 {
			time.Sleep(time.Duration(p.SleepMs) * time.Millisecond)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"pid":`+pid+`,"active":`+strconv.FormatInt(n, 10)+`,"payload":`)
		_, _ = w.Write(body)
		_, _ = io.WriteString(w, `}`)
	})
	err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux)
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// freePort is a port for a process that binds it later (see package freeport).
func freePort(t testing.TB) int {
	t.Helper()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

type testServer struct {
	url        string
	runtimeURL string
	stop       context.CancelFunc
	done       chan int
	logs       *syncBuffer
}

// syncBuffer collects the watchdog's log lines for a test to check.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a server-mode watchdog with a warm runtime (the test binary)
// on a free port; extra environment entries override the defaults.
func start(t testing.TB, extra ...string) *testServer {
	t.Helper()
	return startWith(t, server.DefaultOptions(), extra...)
}

// startWith is start with the server's options.
func startWith(t testing.TB, opts server.Options, extra ...string) *testServer {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	runtimeURL := fmt.Sprintf("http://127.0.0.1:%d/invoke", freePort(t))
	env := append([]string{
		"EXECUTION_MODE=WARM",
		"WARM_PORT=1",
		"RUNTIME_URL=" + runtimeURL,
		"WATCHDOG_CMD=" + self,
		runtimeEnv + "=1",
		"KILL_GRACE_MS=500",
		"WARM_IDLE_TIMEOUT_MS=0",
		"LOG_LEVEL=warn",
		"PATH=" + os.Getenv("PATH"),
	}, extra...)
	ts := serveWith(t, env, true, 10*time.Second, opts)
	ts.runtimeURL = runtimeURL
	return ts
}

// serve runs a server-mode watchdog configured by env on a free loopback
// port until the test ends, and waits until it is ready. Its log goes to
// ts.logs, and to the test's log too when verbose; otherwise it is shown
// only when the test fails. The watchdog must stop within stopWithin.
func serve(t testing.TB, env []string, verbose bool, stopWithin time.Duration) *testServer {
	t.Helper()
	return serveWith(t, env, verbose, stopWithin, server.DefaultOptions())
}

// serveWith is serve with the server's options.
func serveWith(t testing.TB, env []string, verbose bool, stopWithin time.Duration, opts server.Options) *testServer {
	t.Helper()
	cfg, err := config.New(env)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	var w io.Writer = logs
	if verbose {
		w = io.MultiWriter(testWriter{t}, logs)
	}
	log := logging.New(procio.NewSyncWriter(w), cfg.LogLevel, "json")
	procs := process.NewManager(log, false)
	deps := protocol.Deps{Procs: procs, Log: log, Stdout: io.Discard, Stderr: io.Discard}
	cb := callback.NewClient(cfg.CallbackAttempts, cfg.CallbackBackoff, cfg.CallbackTimeout, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{url: "http://" + ln.Addr().String(), stop: cancel, done: make(chan int, 1), logs: logs}
	go func() { ts.done <- server.NewWithOptions(cfg, deps, cb, opts).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(stopWithin):
			t.Errorf("the server did not stop within %v", stopWithin)
		}
		procs.Close()
		if !verbose && t.Failed() {
			t.Logf("watchdog log:\n%s", logs.String())
		}
	})
	ts.waitReady(t)
	return ts
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (ts *testServer) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(ts.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the runtime did not become ready within 10s")
}

func post(t testing.TB, client *http.Client, url, body string) (int, http.Header, string) {
	t.Helper()
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, nil, ""
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

func (ts *testServer) waitInFlight(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(ts.url + "/metrics")
		if err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(data, []byte(`watchdog_invocations_in_flight{function="unknown"} 1`)) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no invocation in flight within 5s")
}

// With WARM_QUEUE_SIZE=0, many requests at once: exactly one runs, every
// other one is refused at once with 429 and Retry-After, none is queued
// behind it.
func TestWithoutQueueConcurrentRequestsAreRefusedAtOnce(t *testing.T) {
	ts := start(t, "WARM_QUEUE_SIZE=0")
	first := make(chan int, 1)
	go func() {
		code, _, _ := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"first","payload":{"sleep_ms":1500}}`)
		first <- code
	}()
	ts.waitInFlight(t)

	const n = 16
	var wg sync.WaitGroup
	codes := make(chan int, n)
	slowest := make(chan time.Duration, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			body := fmt.Sprintf(`{"execution_id":"other-%d","payload":%d}`, i, i)
			code, h, resp := post(t, &http.Client{}, ts.url+"/invoke", body)
			slowest <- time.Since(began)
			codes <- code
			if code == http.StatusTooManyRequests {
				if h.Get("Retry-After") != "1" {
					t.Errorf("429 without Retry-After: 1 (got %q)", h.Get("Retry-After"))
				}
				if !strings.Contains(resp, `"code":"BUSY"`) {
					t.Errorf("429 body %s has no BUSY code", resp)
				}
			}
		}()
	}
	wg.Wait()
	close(codes)
	close(slowest)
	for code := range codes {
		if code != http.StatusTooManyRequests {
			t.Errorf("a request sent while one was in flight got %d, want 429", code)
		}
	}
	for d := range slowest {
		if d > time.Second {
			t.Errorf("a refused request took %v: it was queued, not refused at once", d)
		}
	}
	if code := <-first; code != http.StatusOK {
		t.Errorf("the invocation in flight got %d, want 200", code)
	}
}

// With nothing in flight, stopping takes milliseconds: no fixed drain
// interval, and the runtime's group is stopped.
func TestStopWhenIdleIsFast(t *testing.T) {
	ts := start(t, "KILL_GRACE_MS=5000")
	_, _, body := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"one","payload":1}`)
	var res struct {
		Output struct {
			Pid int `json:"pid"`
		} `json:"output"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Output.Pid == 0 {
		t.Fatalf("no runtime pid in %s (%v)", body, err)
	}
	began := time.Now()
	ts.stop()
	if code := <-ts.done; code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("stopping an idle server took %v", took)
	}
	if err := syscall.Kill(res.Output.Pid, 0); err == nil {
		t.Errorf("runtime pid %d is still alive after the server stopped", res.Output.Pid)
	}
	ts.done <- 0 // for the cleanup
}

// Stopping while an invocation is in flight lets it complete; new ones are
// refused with 503 SHUTTING_DOWN meanwhile.
func TestStopDrainsTheInvocationInFlight(t *testing.T) {
	ts := start(t)
	inFlight := make(chan string, 1)
	go func() {
		code, _, body := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"drained","payload":{"sleep_ms":700}}`)
		inFlight <- strconv.Itoa(code) + " " + body
	}()
	ts.waitInFlight(t)
	ts.stop()

	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(ts.url + "/health")
		if err != nil {
			t.Fatalf("the server stopped listening with an invocation in flight: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/health did not turn 503 after the stop")
		}
		time.Sleep(2 * time.Millisecond)
	}
	code, _, body := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"late","payload":1}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"SHUTTING_DOWN"`) {
		t.Errorf("new invocation while draining: %d %s, want 503 SHUTTING_DOWN", code, body)
	}
	got := <-inFlight
	if !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"execution_id":"drained","success":true`) {
		t.Errorf("the invocation in flight got %s, want 200 with its output", got)
	}
	if code := <-ts.done; code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	ts.done <- 0
}

// A callback still pending at shutdown is waited for only so long; then it
// is given up and its result is logged whole as undelivered.
func TestShutdownGivesUpOnAHangingCallbackButLogsTheResult(t *testing.T) {
	opts := server.DefaultOptions()
	opts.DeliveryDrainTimeout = 300 * time.Millisecond
	recv, err := receiver.Start(receiver.Behaviour{FailFirst: -1, Hang: true})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	ts := startWith(t, opts, "CALLBACK_URL="+recv.Base, "CALLBACK_TIMEOUT_MS=60000", "LOG_LEVEL=info")
	code, _, _ := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"lost-cb","payload":{"k":"v"}}`)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	began := time.Now()
	ts.stop()
	if code := <-ts.done; code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	ts.done <- 0
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("shutdown took %v with a hanging callback; want about the 300ms bound", took)
	}
	logs := ts.logs.String()
	recs := records(t, logs)
	for _, want := range []map[string]any{
		{"msg": regexp.MustCompile(`^callbacks still pending at shutdown; giving up on them`)},
		{"msg": "callback undelivered", "execution_id": "lost-cb", "undelivered": true,
			"result.success": true, "result.output.pid": regexp.MustCompile(`^\d+$`)},
	} {
		if !hasRecord(recs, want) {
			t.Errorf("no log record has %v:\n%s", want, logs)
		}
	}
}

// The warm path's overhead over calling the runtime directly is the
// difference between these two, for the performance target (p50 <= 0.08ms):
// go test -run - -bench 'Invoke' ./server/
func BenchmarkWarmInvoke(b *testing.B) {
	ts := start(b)
	benchmarkPost(b, ts.url+"/invoke")
}

func BenchmarkDirectRuntimeInvoke(b *testing.B) {
	ts := start(b)
	benchmarkPost(b, ts.runtimeURL)
}

func benchmarkPost(b *testing.B, url string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	body := []byte(`{"input":"hello"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("X-Execution-Id", "bench")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
