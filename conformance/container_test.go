package conformance_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/testcontainers/testcontainers-go"

	"nanofaas.dev/conformance"
	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/events"
	"nanofaas.dev/watchdog/result"
)

// The container scenarios of the watchdog's guarantees: the real watchdog as
// PID 1 of a real example image, a callback receiver in this test reached
// through host.docker.internal, and Docker's own view of the container.

func randomID(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// startContainer starts a container and removes it when the test ends.
func startContainer(t *testing.T, d *conformance.Docker, spec conformance.ContainerSpec) *conformance.Container {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Errorf("remove container %s: %v", c.ShortID(), err)
		}
	})
	return c
}

// startReceiver starts the suite's callback receiver (before: see
// conformance.StartReceiver) and closes it when the test ends.
func startReceiver(t *testing.T, before func(receiver.Call)) *receiver.Receiver {
	t.Helper()
	r, err := conformance.StartReceiver(before)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// requireExample is Docker, the example of examples/<dir> and its image's
// configuration; it fails the test when the image is missing.
func requireExample(t *testing.T, dir string) (*conformance.Docker, Example, *conformance.ImageConfig) {
	t.Helper()
	d := requireDocker(t)
	ex := exampleByDir(t, dir)
	return d, ex, requireImage(t, d, ex.Image)
}

// fnSpec is a one-shot container of image (which has python3: the
// python-stdio example's) whose function is the watchdog's versatile test
// function, fn.py ARGS, reporting execution id to recv.
func fnSpec(t *testing.T, image, id string, recv *receiver.Receiver, args string) conformance.ContainerSpec {
	t.Helper()
	return conformance.ContainerSpec{
		Image: image,
		Env: map[string]string{
			"EXECUTION_ID": id,
			"CALLBACK_URL": conformance.ContainerURL(recv),
			"WATCHDOG_CMD": "python3 /opt/conformance/fn.py " + args,
		},
		Files: []testcontainers.ContainerFile{{
			HostFilePath:      filepath.Join(repoRoot(t), "fixtures", "runtimes", "fn.py"),
			ContainerFilePath: "/opt/conformance/fn.py",
			FileMode:          0o755,
		}},
	}
}

// startFn starts, for a fresh execution id of kind, a container of the
// python-stdio example's image that runs fn.py ARGS (see fnSpec) and reports
// to a receiver of its own.
func startFn(t *testing.T, kind, args string) (*receiver.Receiver, string, *conformance.Container) {
	t.Helper()
	d, ex, _ := requireExample(t, "python-stdio")
	recv := startReceiver(t, nil)
	id := randomID(kind)
	return recv, id, startContainer(t, d, fnSpec(t, ex.Image, id, recv, args))
}

// waitExitZero waits for the container to exit and fails the test unless
// it exits with code 0.
func waitExitZero(t *testing.T, c *conformance.Container) {
	t.Helper()
	code, err := c.WaitExit(context.Background(), 30*time.Second)
	if err != nil || code != 0 {
		t.Fatalf("container exit code %d (%v), want 0\n%s", code, err, logsOf(t, c))
	}
}

// onlyCall is the one callback recv got for id; the test fails when there
// is not exactly one.
func onlyCall(t *testing.T, recv *receiver.Receiver, id string, c *conformance.Container) receiver.Call {
	t.Helper()
	calls := recv.For(id)
	if len(calls) != 1 {
		t.Fatalf("%d callbacks for %s, want 1\n%s", len(calls), id, logsOf(t, c))
	}
	return calls[0]
}

// onlyResult is onlyCall and its decoded result.
func onlyResult(t *testing.T, recv *receiver.Receiver, id string, c *conformance.Container) (receiver.Call, result.Result) {
	t.Helper()
	call := onlyCall(t, recv, id, c)
	res, err := call.Result()
	if err != nil {
		t.Fatal(err)
	}
	return call, res
}

// stopQuickly is docker stop: the container must exit with code 0 within
// 3s. It returns how long the stop took.
func stopQuickly(t *testing.T, c *conformance.Container) time.Duration {
	t.Helper()
	took, err := c.Stop(context.Background(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.ExitCode != 0 || took > 3*time.Second {
		t.Errorf("docker stop took %v, exit code %d; want exit code 0 within 3s\n%s", took, st.ExitCode, logsOf(t, c))
	}
	return took
}

func logsOf(t *testing.T, c *conformance.Container) string {
	b, err := c.Logs(context.Background())
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	return string(b)
}

// waitProcesses polls docker top until at least n processes run in the container.
func waitProcesses(t *testing.T, c *conformance.Container, n int, bound time.Duration) []conformance.Process {
	t.Helper()
	deadline := time.Now().Add(bound)
	var procs []conformance.Process
	for time.Now().Before(deadline) {
		var err error
		procs, err = c.Processes(context.Background())
		if err == nil && len(procs) >= n {
			return procs
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("waited %v for %d processes in container %s, saw %v\n%s", bound, n, c.ShortID(), procs, logsOf(t, c))
	return nil
}

// TestContainerCallback posts a one-shot result from a container to this
// test, at CALLBACK_URL/{id}:complete or at a CALLBACK_URL that already ends
// in :complete, with the ids as headers and the manifest's exact output.
//
// Covers: WD-CB-001
func TestContainerCallback(t *testing.T) {
	t.Parallel()
	d, ex, _ := requireExample(t, "python-stdio")
	recv := startReceiver(t, nil)
	base := conformance.ContainerURL(recv)
	for _, tc := range []struct {
		name     string
		callback func(id string) string
	}{
		{"base URL", func(string) string { return base }},
		{"URL ending in :complete", func(id string) string { return base + "/" + id + ":complete" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := randomID("exec-cb")
			c := startContainer(t, d, conformance.ContainerSpec{Image: ex.Image, Env: map[string]string{
				"EXECUTION_ID":       id,
				"TRACE_ID":           "trace-" + id,
				"CALLBACK_URL":       tc.callback(id),
				"INVOCATION_PAYLOAD": string(ex.Example.Payload),
			}})
			waitExitZero(t, c)
			got := onlyCall(t, recv, id, c)
			want := map[string]string{
				"path":           receiver.ExecutionsPath + "/" + id + ":complete",
				"Content-Type":   "application/json",
				"X-Execution-Id": id,
				"X-Trace-Id":     "trace-" + id,
			}
			have := map[string]string{
				"path":           got.Path,
				"Content-Type":   got.Header.Get("Content-Type"),
				"X-Execution-Id": got.Header.Get("X-Execution-Id"),
				"X-Trace-Id":     got.Header.Get("X-Trace-Id"),
			}
			if diff := cmp.Diff(want, have); diff != "" {
				t.Errorf("callback request (-want +got):\n%s", diff)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(got.Body, &body); err != nil {
				t.Fatalf("callback body %q: %v", got.Body, err)
			}
			if string(body["success"]) != "true" || string(body["error"]) != "null" {
				t.Errorf("callback body %s: want success true and error null", got.Body)
			}
			diff, err := conformance.DiffJSON(ex.Example.Output, body["output"])
			if err != nil {
				t.Fatal(err)
			}
			if diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

// TestContainerWatchdogEvents runs an HTTP runtime one-shot, in an image
// built around this tree's watchdog, at LOG_LEVEL=debug and reads the
// watchdog's log records through the nanofaas.dev/watchdog/events contract,
// as WD checks do: in a container the watchdog is PID 1 (pid1 true), the
// runtime's readiness carries its startup time, and the invocation's end
// its duration.
//
// Covers: WD-LOG-004
func TestContainerWatchdogEvents(t *testing.T) {
	t.Parallel()
	d := requireDocker(t)
	image := treeImage(t, "http-ok")
	recv := startReceiver(t, nil)
	id := randomID("exec-events")
	c := startContainer(t, d, conformance.ContainerSpec{Image: image, Env: map[string]string{
		"EXECUTION_ID":       id,
		"CALLBACK_URL":       conformance.ContainerURL(recv),
		"INVOCATION_PAYLOAD": `{"input":"hello"}`,
		"LOG_LEVEL":          "debug",
		"LOG_FORMAT":         "json",
	}})
	waitExitZero(t, c)
	logs, err := c.Logs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	evs := conformance.WatchdogEvents(logs)
	start, ok1 := conformance.FindEvent(evs, events.WatchdogStarting)
	ready, ok2 := conformance.FindEvent(evs, events.RuntimeReady)
	done, ok3 := conformance.FindEvent(evs, events.InvocationFinished)
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("records %q, %q, %q: found %v %v %v\n%s", events.WatchdogStarting, events.RuntimeReady, events.InvocationFinished, ok1, ok2, ok3, logs)
	}
	if start.Attrs[events.KeyPID1] != true {
		t.Errorf("%s: %s = %v, want true in a container", events.WatchdogStarting, events.KeyPID1, start.Attrs[events.KeyPID1])
	}
	if ms, ok := ready.Attrs[events.KeyStartupMs].(float64); !ok || ms < 0 {
		t.Errorf("%s: %s = %v, want a number of milliseconds", events.RuntimeReady, events.KeyStartupMs, ready.Attrs[events.KeyStartupMs])
	}
	if done.Attrs[events.KeySuccess] != true {
		t.Errorf("%s: %s = %v, want true", events.InvocationFinished, events.KeySuccess, done.Attrs[events.KeySuccess])
	}
	if _, ok := done.Attrs[events.KeyDurationMs].(float64); !ok {
		t.Errorf("%s: no %s", events.InvocationFinished, events.KeyDurationMs)
	}
}

// TestContainerTimeoutKillsTree times out a function whose tree ignores
// SIGTERM: when the TIMEOUT result reaches the callback, Docker sees nothing
// left in the container but the watchdog.
//
// Covers: WD-PROC-003
func TestContainerTimeoutKillsTree(t *testing.T) {
	t.Parallel()
	d, ex, _ := requireExample(t, "python-stdio")
	id := randomID("exec-timeout")

	var once sync.Once
	atCallback := make(chan []conformance.Process, 1)
	var c *conformance.Container
	ready := make(chan struct{})
	recv := startReceiver(t, func(cb receiver.Call) {
		if cb.ExecutionID() != id {
			return
		}
		// The watchdog waits for this answer: look inside the container now.
		<-ready
		once.Do(func() {
			procs, err := c.Processes(context.Background())
			if err != nil {
				t.Errorf("docker top at the callback: %v", err)
			}
			atCallback <- procs
		})
	})
	spec := fnSpec(t, ex.Image, id, recv, "stubborn-tree")
	spec.Env["TIMEOUT_MS"] = "2500"
	spec.Env["KILL_GRACE_MS"] = "500"
	c = startContainer(t, d, spec)
	close(ready)
	// The tree is there: the watchdog, the function and its child.
	before := waitProcesses(t, c, 3, 10*time.Second)

	waitExitZero(t, c)
	call, res := onlyResult(t, recv, id, c)
	if res.ErrorCode() != result.Timeout || res.Error.Message != "Function exceeded timeout of 2500ms" {
		t.Errorf("result %s, want a TIMEOUT of 2500ms", call.Body)
	}
	var after []conformance.Process
	select {
	case after = <-atCallback:
	default:
		t.Fatal("the receiver did not look at the container's processes")
	}
	if len(after) != 1 || !strings.Contains(after[0].Command, "watchdog") {
		t.Errorf("processes in the container when the TIMEOUT result was posted: %v, want only the watchdog (before the timeout: %v)", after, before)
	}
}

// TestContainerDockerStop stops a one-shot container in the middle of an
// invocation: it exits 0 at once, and the result, still delivered, says the
// function was stopped by the forwarded SIGTERM.
//
// Covers: WD-PID1-002, WD-PROC-006
func TestContainerDockerStop(t *testing.T) {
	t.Parallel()
	recv, id, c := startFn(t, "exec-stop", "sleep 60")
	waitProcesses(t, c, 2, 10*time.Second)
	took := stopQuickly(t, c)
	call, res := onlyResult(t, recv, id, c)
	if res.ErrorCode() != result.FunctionError || !strings.Contains(res.Error.Message, "signal SIGTERM after the watchdog began shutting down") {
		t.Errorf("result %s, want the FUNCTION_ERROR of a function stopped by SIGTERM", call.Body)
	}
	t.Logf("docker stop took %v", took)
}

func waitHealthy(t *testing.T, url string, bound time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(bound)
	last := "no answer"
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within %v (last: %s)", url, bound, last)
}

// TestContainerReapsOrphans runs a function that leaves orphans behind in
// the container: the watchdog, PID 1, reaps them, so the function counts no
// zombie.
//
// Covers: WD-PID1-001
func TestContainerReapsOrphans(t *testing.T) {
	t.Parallel()
	recv, id, c := startFn(t, "exec-orphans", "orphans 5")
	waitExitZero(t, c)
	call, res := onlyResult(t, recv, id, c)
	var out struct {
		Zombies *int `json:"zombies"`
	}
	if !res.Success || json.Unmarshal(res.Output, &out) != nil || out.Zombies == nil {
		t.Fatalf("result %s, want the function's zombie count", call.Body)
	}
	if *out.Zombies != 0 {
		t.Errorf("%d zombies in the container, want 0: the watchdog as PID 1 must reap orphans", *out.Zombies)
	}
}

// TestContainerWarm serves invocations from a WARM example container: the
// envelope's answer carries the result, the envelope's callback_url (this
// test, through host.docker.internal) gets it too, a refused payload answers
// 500, and docker stop ends the container at once with exit code 0.
//
// Covers: WD-SRV-001, WD-SRV-007, WD-SRV-010, WD-PID1-002
func TestContainerWarm(t *testing.T) {
	t.Parallel()
	d, ex, cfg := requireExample(t, "python-fastapi-warm")
	port := cfg.Env["WARM_PORT"]
	if port == "" {
		port = "8080"
	}
	recv := startReceiver(t, nil)
	c := startContainer(t, d, conformance.ContainerSpec{Image: ex.Image, Expose: []string{port + "/tcp"}})
	base, err := c.Endpoint(context.Background(), port+"/tcp")
	if err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, base+"/health", 30*time.Second)

	invoke := func(envelope map[string]any) (int, result.Result) {
		t.Helper()
		body, _ := json.Marshal(envelope)
		resp, err := http.Post(base+"/invoke", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		res, err := result.DecodeFrom(resp.Body)
		if err != nil {
			t.Fatalf("POST /invoke: %v", err)
		}
		return resp.StatusCode, res
	}

	id := randomID("warm")
	status, res := invoke(map[string]any{"execution_id": id, "trace_id": "trace-" + id,
		"callback_url": conformance.ContainerURL(recv), "payload": ex.Example.Payload})
	if status != http.StatusOK || !res.Success {
		t.Fatalf("POST /invoke: %d %+v", status, res)
	}
	if diff, _ := conformance.DiffJSON(ex.Example.Output, res.Output); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	call, err := recv.WaitFor(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := call.Result()
	if err != nil {
		t.Fatal(err)
	}
	if diff, _ := conformance.DiffJSON(ex.Example.Output, cb.Output); !cb.Success || diff != "" || call.Header.Get("X-Trace-Id") != "trace-"+id {
		t.Errorf("callback %s %s: want the same successful result, with X-Trace-Id", call.Header, call.Body)
	}

	status, res = invoke(map[string]any{"execution_id": randomID("warm-bad"), "payload": json.RawMessage(badPayload)})
	if status != http.StatusInternalServerError || res.ErrorCode() != result.FunctionError {
		t.Errorf("bad payload: %d %+v, want 500 FUNCTION_ERROR", status, res)
	}

	took := stopQuickly(t, c)
	t.Logf("docker stop took %v", took)
}
