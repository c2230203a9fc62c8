package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/callback"
	"nanofaas.dev/watchdog/internal/process"
	"nanofaas.dev/watchdog/internal/protocol"
	"nanofaas.dev/watchdog/result"
)

const fuzzPrefix = "http://cp:8080/v1/internal/executions"

func fuzzServer(t testing.TB, extra ...string) *Server {
	t.Helper()
	env := append([]string{"WARM=true", "EXECUTION_MODE=STDIO", "WATCHDOG_CMD=true", "TIMEOUT_MS=1234",
		"CALLBACK_URL=http://trusted.invalid/cb", "MAX_PAYLOAD_BYTES=4096", "CALLBACK_ATTEMPTS=1",
		"CALLBACK_ALLOWED_PREFIXES=" + fuzzPrefix}, extra...)
	cfg, err := config.New(env)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cb := callback.NewClient(1, 0, time.Second, log)
	cb.HTTP.Transport = failingTransport{}
	s := New(cfg, protocol.Deps{Procs: process.NewManager(log, false), Log: log, Stdout: io.Discard, Stderr: io.Discard}, cb)
	s.perCall = make(chan protocol.Invoker, 1)
	s.perCall <- echoRuntime{}
	return s
}

// failingTransport fails every callback at once: the fuzzers never send a
// request anywhere.
type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in the fuzzer")
}

// echoRuntime answers the payload as the output, or fails on request.
type echoRuntime struct{}

func (echoRuntime) Invoke(_ context.Context, inv protocol.Invocation) result.Result {
	if bytes.Equal(inv.Payload, []byte(`"fail"`)) {
		return result.Failure(result.FunctionError, "failing on request")
	}
	return result.Success(inv.Payload)
}

// FuzzParse checks /invoke request parsing in both forms (envelope, and
// X-Execution-Id header with the payload as body). Whatever the body and
// headers, an accepted request is one the watchdog can carry out:
//   - a usable execution id and trace id (header-safe, bounded);
//   - a payload that is one JSON document; in the header form, exactly the
//     body (trimmed), or null for an empty body;
//   - a timeout from 1 ms to 24 h;
//   - a callback URL that is CALLBACK_URL, or an absolute http(s) URL whose
//     target is under CALLBACK_ALLOWED_PREFIXES;
//   - in the envelope form, keys that are exact and unique: no key appears
//     twice, none differs from an envelope key only by case or folding,
//     and the fields are what encoding/json makes of the same body (once
//     keys are exact and unique, the two must agree).
//
// A refused request gets a message that renders as a JSON error body.
func FuzzParse(f *testing.F) {
	for _, seed := range []struct {
		body, id, trace string
	}{
		{`{"execution_id":"e1","trace_id":"t1","payload":{"x":[1,2]},"timeout_ms":250,"callback_url":"` + fuzzPrefix + `"}`, "", ""},
		{`{"execution_id":"e2","callback_url":"http://evil.example/x"}`, "", ""},
		{`{"execution_id":"e\n3","payload":null}`, "", ""},
		{`{"execution_id":"x","timeout_ms":0}`, "", ""},
		{`{"execution_id":"x","timeout_ms":86400001}`, "", ""},
		{`{"execution_id":"x","callback_url":"` + fuzzPrefix + `/../../admin"}`, "", ""},
		{`{"EXECUTION_ID":"case","Payload":1}`, "", ""},
		{` [1, 2] `, "h1", "t9"},
		{``, "h2", ""},
		{`{not json`, "h3", ""},
		{`{"execution_id":"x"} trailing`, "", ""},
		{"\xff\xfe", "", ""},
		{`{"execution_id":"a","callbac\u212a_url":"http://evil/"}`, "", ""},
		{`{"execution_id":"a","execution_id":"b"}`, "", ""},
		{`{"execution_id":"a","callback\u005furl":"http://evil/"}`, "", ""},
		{`{"execution_id":"a","x":1,"x":2,"payload":{"a":1,"a":2}}`, "", ""},
		{`null`, "", ""},
	} {
		f.Add([]byte(seed.body), seed.id, seed.trace)
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte, id, trace string) {
		r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
		if id != "" {
			r.Header["X-Execution-Id"] = []string{id}
		}
		if trace != "" {
			r.Header["X-Trace-Id"] = []string{trace}
		}
		var req request
		msg := s.parse(r, body, &req)
		if msg != "" {
			var e struct {
				Error struct{ Code, Message string }
			}
			rec := httptest.NewRecorder()
			writeError(rec, r, http.StatusBadRequest, CodeBadRequest, msg)
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code != CodeBadRequest || e.Error.Message == "" {
				t.Fatalf("error body %q is not a JSON error (%v)", rec.Body.Bytes(), err)
			}
			return
		}
		if req.headerForm != (id != "") {
			t.Fatalf("header form %v with X-Execution-Id %q", req.headerForm, id)
		}
		if req.executionID == "" || config.CheckID(req.executionID) != "" || config.CheckID(req.traceID) != "" {
			t.Fatalf("accepted unusable ids %q / %q", req.executionID, req.traceID)
		}
		if !json.Valid(req.payload) {
			t.Fatalf("accepted a payload that is not JSON: %q", req.payload)
		}
		if req.headerForm {
			want := bytes.TrimSpace(body)
			if len(want) == 0 {
				want = []byte("null")
			}
			if !bytes.Equal(req.payload, want) {
				t.Fatalf("header form payload %q, want the body %q", req.payload, want)
			}
		}
		if req.timeout < time.Millisecond || req.timeout > maxTimeout {
			t.Fatalf("accepted timeout %v", req.timeout)
		}
		if req.callbackURL != s.cfg.CallbackURL && !callback.Allowed(callback.URL(req.callbackURL, req.executionID), s.cfg.CallbackAllowedPrefixes) {
			t.Fatalf("accepted callback URL %q outside CALLBACK_ALLOWED_PREFIXES", req.callbackURL)
		}
		if !req.headerForm {
			checkExactKeys(t, body, &req)
		}
	})
}

// checkExactKeys checks an accepted envelope's keys against the top-level
// keys of body, and its fields against encoding/json's reading of it.
func checkExactKeys(t *testing.T, body []byte, req *request) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return // null
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("accepted %q, which is not an object: %v", body, err)
		}
		key := tok.(string)
		if seen[key] {
			t.Fatalf("accepted %q with key %q twice", body, key)
		}
		seen[key] = true
		for _, k := range []string{"execution_id", "callback_url", "trace_id", "payload", "timeout_ms"} {
			if key != k && strings.EqualFold(key, k) {
				t.Fatalf("accepted %q with key %q for %q", body, key, k)
			}
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("accepted %q: %v", body, err)
		}
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
	}
	if env.ExecutionID != req.executionID || env.TraceID != "" && env.TraceID != req.traceID {
		t.Fatalf("%q: ids %q/%q, encoding/json reads %q/%q", body, req.executionID, req.traceID, env.ExecutionID, env.TraceID)
	}
	if len(env.Payload) > 0 && !bytes.Equal(env.Payload, req.payload) {
		t.Fatalf("%q: payload %q, encoding/json reads %q", body, req.payload, env.Payload)
	}
}

// FuzzEnvelopeRoundTrip: a valid envelope, encoded by any JSON encoder,
// parses back to exactly its fields.
func FuzzEnvelopeRoundTrip(f *testing.F) {
	f.Add("exec-1", "trace-1", "/e1", `{"input":"hi"}`, int64(30000))
	f.Add("ünï code", "", "", `null`, int64(1))
	f.Add("x", "t", "/a/b?c=d", `[1,"two",{"3":null}]`, int64(86400000))
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, id, trace, cbPath, payload string, timeoutMs int64) {
		if id == "" || config.CheckID(id) != "" || config.CheckID(trace) != "" || !json.Valid([]byte(payload)) || !utf8.ValidString(cbPath) ||
			timeoutMs < 1 || timeoutMs > maxTimeout.Milliseconds() {
			return
		}
		env := map[string]any{"execution_id": id, "payload": json.RawMessage(payload), "timeout_ms": timeoutMs}
		if trace != "" {
			env["trace_id"] = trace
		}
		cb := ""
		if cbPath != "" {
			cb = fuzzPrefix + cbPath
			env["callback_url"] = cb
		}
		body, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		var req request
		msg := s.parse(httptest.NewRequest(http.MethodPost, "/invoke", nil), body, &req)
		if cb != "" && msg != "" && strings.Contains(msg, "callback_url") {
			return // a path that leaves the prefix, or is not a URL path
		}
		if msg != "" {
			t.Fatalf("valid envelope %s refused: %s", body, msg)
		}
		var want, got any
		_ = json.Unmarshal([]byte(payload), &want)
		_ = json.Unmarshal(req.payload, &got)
		wantCB := s.cfg.CallbackURL
		if cb != "" {
			wantCB = cb
		}
		if req.executionID != id || req.traceID != trace || req.timeout != time.Duration(timeoutMs)*time.Millisecond ||
			req.callbackURL != wantCB || !jsonEqual(want, got) {
			t.Fatalf("envelope %s parsed to %+v", body, req)
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// FuzzServeHTTP feeds raw requests (any method, path, headers, body and
// framing) to the whole handler, with a runtime that echoes the payload.
// Whatever arrives:
//   - the status is one the API documents, and the body is JSON: an error
//     body with a code and a message, a result body, or (header form
//     success) the output itself;
//   - the slot is free again afterwards: no request leaves the watchdog
//     stuck "busy".
func FuzzServeHTTP(f *testing.F) {
	for _, raw := range []string{
		"POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 36\r\n\r\n{\"execution_id\":\"e1\",\"payload\":[1]}",
		"POST /invoke HTTP/1.1\r\nHost: x\r\nX-Execution-Id: h1\r\nContent-Length: 6\r\n\r\n\"fail\"",
		"POST /invoke HTTP/1.1\r\nHost: x\r\nX-Execution-Id: h1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1]\r\n0\r\n\r\n",
		"POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n{}",
		"POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{\"a\":",
		"POST /invoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 2\r\n\r\n{}",
		"GET /invoke HTTP/1.1\r\nHost: x\r\n\r\n",
		"DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /invoke HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(raw), false)
		f.Add([]byte(raw), true)
	}
	plain := fuzzServer(f)
	authed := fuzzServer(f, "WARM_AUTH_TOKEN=secret")
	f.Fuzz(func(t *testing.T, raw []byte, withAuth bool) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // net/http refuses it before the watchdog sees it
		}
		s := plain
		if withAuth {
			s = authed
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if places, running, waiting := s.q.counts(); places+running+waiting != 0 {
			t.Fatalf("%d places, %d slots, %d waiters still taken after %q", places, running, waiting, raw)
		}
		code := rec.Code
		switch code {
		case 200, 400, 401, 404, 405, 413, 429, 500, 503, 504:
		default:
			t.Fatalf("status %d for %q", code, raw)
		}
		if r.Method == http.MethodHead {
			return
		}
		b := rec.Body.Bytes()
		if r.URL.Path == "/metrics" && code == 200 {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("status %d body %q is not JSON, for %q", code, b, raw)
		}
		if code >= 400 {
			var e struct {
				Error *struct{ Code, Message string } `json:"error"`
			}
			if json.Unmarshal(b, &e) != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("status %d body %s has no error code and message", code, b)
			}
		}
	})
}
