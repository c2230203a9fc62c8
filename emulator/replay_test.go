package emulator_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// exchange makes one request, checks its answer against the contract and
// returns it.
func exchange(c *contract, client *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, data, c.check(req, resp.StatusCode, resp.Header, data)
}

// multiHeader collects repeated -H flags.
type multiHeader []string

func (m *multiHeader) String() string     { return strings.Join(*m, ", ") }
func (m *multiHeader) Set(v string) error { *m = append(*m, v); return nil }

// cmdContractHTTP is the scenarios' http command (devkit/scripttest's, same
// flags and output), which also validates every answer against the
// emulator's OpenAPI document: a drift between the API and the document
// fails the scenario.
func cmdContractHTTP(c *contract) func(ts *testscript.TestScript, neg bool, args []string) {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		fs := flag.NewFlagSet("http", flag.ContinueOnError)
		var headers multiHeader
		fs.Var(&headers, "H", "request header")
		body := fs.String("d", "", "request body")
		file := fs.String("f", "", "request body file")
		show := fs.String("show", "Content-Type,Retry-After,X-Execution-Id,Allow", "response headers to print")
		timeout := fs.Duration("timeout", 30*time.Second, "request timeout")
		if err := fs.Parse(args); err != nil || fs.NArg() != 2 {
			ts.Fatalf("usage: http [-H 'K: V'] [-d BODY | -f FILE] [-show H1,H2] [-timeout D] METHOD URL")
		}
		var reader io.Reader
		switch {
		case *file != "":
			f, err := os.Open(ts.MkAbs(*file))
			ts.Check(err)
			defer f.Close()
			reader = f
		case *body != "":
			reader = strings.NewReader(*body)
		}
		req, err := http.NewRequest(fs.Arg(0), fs.Arg(1), reader)
		ts.Check(err)
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		resp, data, err := exchange(c, &http.Client{Timeout: *timeout}, req)
		if resp == nil {
			if neg {
				fmt.Fprintf(ts.Stdout(), "error: %v\n", err)
				return
			}
			ts.Fatalf("http: %v", err)
		}
		if err != nil {
			ts.Fatalf("contract: %v", err)
		}
		fmt.Fprintf(ts.Stdout(), "status: %d\n", resp.StatusCode)
		for _, h := range strings.Split(*show, ",") {
			if v := resp.Header.Get(h); v != "" {
				fmt.Fprintf(ts.Stdout(), "%s: %s\n", strings.ToLower(h), v)
			}
		}
		fmt.Fprintf(ts.Stdout(), "body: %s\n", data)
		if neg {
			ts.Fatalf("http: request succeeded; ! http only expects a transport error")
		}
	}
}

// upstreamFunction is FunctionResponse as upstream's CLI decodes it: a
// string where it expects an array (command) fails the decoding.
type upstreamFunction struct {
	Name                   string            `json:"name"`
	Image                  string            `json:"image"`
	Command                []string          `json:"command"`
	Env                    map[string]string `json:"env"`
	TimeoutMs              int               `json:"timeoutMs"`
	Concurrency            int               `json:"concurrency"`
	RequestedExecutionMode string            `json:"requestedExecutionMode"`
	EffectiveExecutionMode string            `json:"effectiveExecutionMode"`
	RuntimeMode            string            `json:"runtimeMode"`
	RuntimeCommand         string            `json:"runtimeCommand"`
}

// upstreamError is the flat error body upstream's CLI maps to its errors.
type upstreamError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// replay is the upstream CLI's calls against one emulator.
type replay struct {
	ts     *testscript.TestScript
	c      *contract
	base   string
	client *http.Client
}

// call makes a request as the upstream CLI does (JSON, Accept JSON) and
// checks the status.
func (r *replay) call(method, path string, body any, headers map[string]string, want int) (*http.Response, []byte) {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		r.ts.Check(err)
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.base+path, reader)
	r.ts.Check(err)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, data, err := exchange(r.c, r.client, req)
	if resp == nil {
		r.ts.Fatalf("%s %s: %v", method, path, err)
	}
	if err != nil {
		r.ts.Fatalf("contract: %v", err)
	}
	if resp.StatusCode != want {
		r.ts.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	r.ts.Logf("%s %s -> %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	return resp, data
}

// decode decodes strictly into v, as the CLI's typed client does.
func (r *replay) decode(data []byte, v any) {
	if err := json.Unmarshal(data, v); err != nil {
		r.ts.Fatalf("the upstream client cannot decode %s: %v", data, err)
	}
}

// fails checks an error answer: the flat body with the code.
func (r *replay) fails(method, path string, body any, headers map[string]string, want int, code string) {
	_, data := r.call(method, path, body, headers, want)
	var e upstreamError
	r.decode(data, &e)
	if e.Error != code || e.Message == "" {
		r.ts.Fatalf("%s %s: error %q (%q), want %q with a message", method, path, e.Error, e.Message, code)
	}
}

// cmdUpstreamReplay (upstream-cli-replay URL) replays the calls of the
// upstream nanofaas CLI (fn apply/list/get/delete, invoke, enqueue,
// executions) against an emulator serving the scenario's functions
// "upper" (STDIO upper-casing) and "sleeper" (timeout 400 ms), and checks
// that each gets what the CLI's client code expects.
func cmdUpstreamReplay(c *contract) func(ts *testscript.TestScript, neg bool, args []string) {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: upstream-cli-replay URL")
		}
		r := &replay{ts: ts, c: c, base: args[0], client: &http.Client{Timeout: 30 * time.Second}}

		// fn list, fn get: FunctionResponse, command as an array.
		_, data := r.call("GET", "/v1/functions", nil, nil, 200)
		var list []upstreamFunction
		r.decode(data, &list)
		if len(list) != 2 || list[0].Name != "sleeper" || list[1].Name != "upper" {
			ts.Fatalf("fn list: %s", data)
		}
		_, data = r.call("GET", "/v1/functions/upper", nil, nil, 200)
		var fn upstreamFunction
		r.decode(data, &fn)
		if fn.RuntimeMode != "STDIO" || fn.EffectiveExecutionMode != "LOCAL" || fn.RuntimeCommand != "fn.py upper" {
			ts.Fatalf("fn get: %s", data)
		}
		r.fails("GET", "/v1/functions/nope", nil, nil, 404, "FUNCTION_NOT_FOUND")

		// fn apply: validation, conflicts, then the image (Docker or not).
		r.fails("POST", "/v1/functions", map[string]any{"name": "1bad", "image": "x:1"}, nil, 400, "VALIDATION_ERROR")
		r.fails("POST", "/v1/functions", map[string]any{"name": "upper", "image": "x:1"}, nil, 409, "FUNCTION_EXISTS")
		spec := map[string]any{"name": "fresh", "image": "nanofaas-emulator-test/absent:never", "runtimeMode": "stdio"}
		if exec.Command("docker", "info").Run() != nil {
			r.fails("POST", "/v1/functions", spec, nil, 503, "DOCKER_UNAVAILABLE")
		} else {
			r.fails("POST", "/v1/functions", spec, nil, 422, "IMAGE_NOT_FOUND")
		}

		// invoke: 200 InvocationResponse and X-Execution-Id.
		resp, data := r.call("POST", "/v1/functions/upper:invoke", map[string]any{"input": map[string]any{"input": "hi"}}, nil, 200)
		var inv struct {
			ExecutionID string          `json:"executionId"`
			Status      string          `json:"status"`
			Output      json.RawMessage `json:"output"`
		}
		r.decode(data, &inv)
		if inv.Status != "success" || string(inv.Output) != `{"input":"HI"}` || resp.Header.Get("X-Execution-Id") != inv.ExecutionID {
			ts.Fatalf("invoke: %s", data)
		}

		// invoke with a timeout: 408, and the execution stays timeout.
		resp, _ = r.call("POST", "/v1/functions/sleeper:invoke", map[string]any{"input": map[string]any{}}, nil, 408)
		timedOut := resp.Header.Get("X-Execution-Id")
		_, data = r.call("GET", "/v1/executions/"+timedOut, nil, nil, 200)
		var st struct {
			Status string `json:"status"`
		}
		r.decode(data, &st)
		if st.Status != "timeout" {
			ts.Fatalf("execution after a 408: %s", data)
		}

		// twice with one Idempotency-Key: one execution.
		key := map[string]string{"Idempotency-Key": "replay-key-1"}
		_, first := r.call("POST", "/v1/functions/upper:invoke", map[string]any{"input": map[string]any{"input": "once"}}, key, 200)
		_, second := r.call("POST", "/v1/functions/upper:invoke", map[string]any{"input": map[string]any{"input": "once"}}, key, 200)
		var a, b struct {
			ExecutionID string `json:"executionId"`
		}
		r.decode(first, &a)
		r.decode(second, &b)
		if a.ExecutionID == "" || a.ExecutionID != b.ExecutionID {
			ts.Fatalf("Idempotency-Key: two executions %q and %q", a.ExecutionID, b.ExecutionID)
		}

		// enqueue: 202 queued; the execution ends in success.
		_, data = r.call("POST", "/v1/functions/upper:enqueue", map[string]any{"input": map[string]any{"input": "later"}}, nil, 202)
		var q struct {
			ExecutionID string `json:"executionId"`
			Status      string `json:"status"`
		}
		r.decode(data, &q)
		if q.Status != "queued" {
			ts.Fatalf("enqueue: %s", data)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, data = r.call("GET", "/v1/executions/"+q.ExecutionID, nil, nil, 200)
			r.decode(data, &st)
			if st.Status == "success" {
				break
			}
			if time.Now().After(deadline) || st.Status == "error" || st.Status == "timeout" {
				ts.Fatalf("enqueued execution: %s", data)
			}
			time.Sleep(20 * time.Millisecond)
		}
		r.fails("GET", "/v1/executions/exec-nope", nil, nil, 404, "EXECUTION_NOT_FOUND")

		// error paths of invoke.
		r.fails("POST", "/v1/functions/nope:invoke", map[string]any{"input": 1}, nil, 404, "FUNCTION_NOT_FOUND")
		r.fails("POST", "/v1/functions/upper:invoke", map[string]any{"input": 1}, map[string]string{"X-Timeout-Ms": "0"}, 400, "BAD_REQUEST")
		r.fails("POST", "/v1/functions/upper:invoke", map[string]any{"input": 1}, map[string]string{"X-Timeout-Ms": "300001"}, 400, "BAD_REQUEST")
		r.fails("POST", "/v1/functions/upper:invoke", map[string]any{"input": 1}, map[string]string{"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE")
		resp, _ = r.call("GET", "/v1/functions/upper:invoke", nil, nil, 405)
		if resp.Header.Get("Allow") != "POST" {
			ts.Fatalf("405 without Allow: POST: %q", resp.Header.Get("Allow"))
		}
		r.fails("GET", "/v1/executions?status=bogus", nil, nil, 400, "BAD_REQUEST")

		// a body over the limit is refused before it is read.
		start := time.Now()
		big := bytes.Repeat([]byte(" "), 17<<20)
		req, err := http.NewRequest("POST", r.base+"/v1/functions/upper:invoke", bytes.NewReader(big))
		ts.Check(err)
		req.Header.Set("Content-Type", "application/json")
		resp, data, err = exchange(c, r.client, req)
		if resp == nil || err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
			ts.Fatalf("17 MiB body: %v %v %s", resp, err, data)
		}
		if d := time.Since(start); d > 5*time.Second {
			ts.Fatalf("17 MiB body: the 413 took %v", d)
		}

		// fn delete: 204, then 404, and the function is gone.
		r.call("DELETE", "/v1/functions/upper", nil, nil, 204)
		r.fails("DELETE", "/v1/functions/upper", nil, nil, 404, "FUNCTION_NOT_FOUND")
		r.fails("POST", "/v1/functions/upper:invoke", map[string]any{"input": 1}, nil, 404, "FUNCTION_NOT_FOUND")
		fmt.Fprintln(ts.Stdout(), "replayed the upstream CLI's calls")
	}
}
