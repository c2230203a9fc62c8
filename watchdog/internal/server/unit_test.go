package server

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/result"
)

func TestBackoffDoublesFrom100msUpTo5s(t *testing.T) {
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}
	for failures, w := range want {
		if got := backoff(failures); got != w {
			t.Errorf("backoff(%d) = %v, want %v", failures, got, w)
		}
	}
	if got := backoff(1000); got != backoffMax {
		t.Errorf("backoff(1000) = %v, want %v", got, backoffMax)
	}
}

func TestStatusForResultCodes(t *testing.T) {
	for code, want := range map[result.Code]int{
		"":                   200,
		result.FunctionError: 500,
		result.SpawnError:    500,
		result.StartupError:  503,
		result.Timeout:       504,
	} {
		if got := StatusFor(code); got != want {
			t.Errorf("StatusFor(%q) = %d, want %d", code, got, want)
		}
	}
}

func TestAppendJSONStringIsValidJSON(t *testing.T) {
	for _, s := range []string{"", "exec-1", `quo"te`, `back\slash`, "new\nline", "tab\t", "ünïcode", "\x01", "bad\xffutf8", "<html>&"} {
		b := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("appendJSONString(%q) = %s: not JSON (%v)", s, b, err)
			continue
		}
		if back != s && strings.ToValidUTF8(s, "\uFFFD") != back {
			t.Errorf("appendJSONString(%q) round-trips to %q", s, back)
		}
	}
}

func TestResultBodyPutsExecutionIDFirst(t *testing.T) {
	res := result.Success(json.RawMessage(`{"a":1}`))
	got := string(resultBody(`id"1`, &res))
	want := `{"execution_id":"id\"1","success":true,"output":{"a":1},"error":null,"duration_ms":0}`
	if got != want {
		t.Errorf("resultBody = %s\nwant          %s", got, want)
	}
}

func TestHealthBodyCarriesTheFailure(t *testing.T) {
	got := string(healthBody("failed", &result.Error{Code: result.StartupError, Message: "exit \"3\""}, 4))
	want := `{"status":"failed","error":{"code":"STARTUP_ERROR","message":"exit \"3\""},"attempts":4}`
	if got != want {
		t.Errorf("healthBody = %s, want %s", got, want)
	}
}

func newParseServer(t *testing.T) *Server {
	t.Helper()
	cfg, err := config.New([]string{"WARM=true", "EXECUTION_MODE=STDIO", "WATCHDOG_CMD=true", "TIMEOUT_MS=1234", "CALLBACK_URL=http://cp:8080/v1/internal/executions"})
	if err != nil {
		t.Fatal(err)
	}
	return &Server{cfg: cfg}
}

func TestParseEnvelope(t *testing.T) {
	s := newParseServer(t)
	r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
	var req request
	msg := s.parse(r, []byte(`{"execution_id":"e1","trace_id":"t1","payload":{"x":[1,2]},"timeout_ms":250,"callback_url":"https://other/cb","extra":true}`), &req)
	if msg != "" {
		t.Fatal(msg)
	}
	if req.headerForm || req.executionID != "e1" || req.traceID != "t1" || string(req.payload) != `{"x":[1,2]}` ||
		req.timeout != 250*time.Millisecond || req.callbackURL != "https://other/cb" {
		t.Errorf("parsed %+v", req)
	}
}

func TestParseEnvelopeDefaults(t *testing.T) {
	s := newParseServer(t)
	r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
	r.Header.Set("X-Trace-Id", "from-header")
	var req request
	if msg := s.parse(r, []byte(`{"execution_id":"e2"}`), &req); msg != "" {
		t.Fatal(msg)
	}
	if string(req.payload) != "null" || req.timeout != 1234*time.Millisecond || req.traceID != "from-header" ||
		req.callbackURL != "http://cp:8080/v1/internal/executions" {
		t.Errorf("parsed %+v", req)
	}
}

func TestParseHeaderForm(t *testing.T) {
	s := newParseServer(t)
	r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
	r.Header.Set("X-Execution-Id", "h1")
	r.Header.Set("X-Trace-Id", "t9")
	var req request
	if msg := s.parse(r, []byte(" [1, 2] \n"), &req); msg != "" {
		t.Fatal(msg)
	}
	if !req.headerForm || req.executionID != "h1" || req.traceID != "t9" || string(req.payload) != "[1, 2]" {
		t.Errorf("parsed %+v", req)
	}
	req = request{}
	if msg := s.parse(r, nil, &req); msg != "" || string(req.payload) != "null" {
		t.Errorf("empty body: %q, payload %s", msg, req.payload)
	}
}

func TestParseRejects(t *testing.T) {
	s := newParseServer(t)
	for body, want := range map[string]string{
		``:                                      "not an invocation envelope",
		`{"execution_id":`:                      "not an invocation envelope",
		`[1]`:                                   "not an invocation envelope",
		`null`:                                  "execution_id is missing",
		`{"payload":1}`:                         "execution_id is missing",
		`{"execution_id":7}`:                    "not an invocation envelope",
		`{"execution_id":"x","timeout_ms":0}`:   "timeout_ms=0 is out of range",
		`{"execution_id":"x","timeout_ms":1.5}`: "not an invocation envelope",
		`{"execution_id":"x","timeout_ms":999999999999}`:  "out of range",
		`{"execution_id":"x","callback_url":"/relative"}`: "not an absolute http:// or https:// URL",
		`{"execution_id":"x"} trailing`:                   "not an invocation envelope",
	} {
		var req request
		r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
		if msg := s.parse(r, []byte(body), &req); !strings.Contains(msg, want) {
			t.Errorf("parse(%s) = %q, want it to say %q", body, msg, want)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
	r.Header.Set("X-Execution-Id", "h")
	var req request
	if msg := s.parse(r, []byte(`{not json`), &req); !strings.Contains(msg, "not valid JSON") {
		t.Errorf("header form with bad JSON: %q", msg)
	}
}

func TestAuthorizedNeedsTheExactBearerToken(t *testing.T) {
	s := newParseServer(t)
	h := sha256.Sum256([]byte("tok-123"))
	s.authHash = &h
	for header, want := range map[string]bool{
		"":                 false,
		"Bearer":           false,
		"Bearer ":          false,
		"Bearer tok-12":    false,
		"Bearer tok-1234":  false,
		"Basic tok-123":    false,
		"Bearer tok-123":   true,
		"bearer tok-123":   true,
		"Bearer  tok-123 ": true,
	} {
		r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		if got := s.authorized(r); got != want {
			t.Errorf("Authorization %q: authorized = %v, want %v", header, got, want)
		}
	}
}
