package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/result"
)

// The per-request work of /invoke that is the watchdog's own (not net/http's
// or the function's): parsing the two request forms, and encoding the
// answer. go test -run - -bench . -benchmem ./server/

var benchPayload = []byte(`{"input":"hello, watchdog","n":42,"tags":["a","b"]}`)

func benchServer() *Server {
	return &Server{cfg: config.Config{Timeout: 30 * time.Second}}
}

func BenchmarkParseHeaderForm(b *testing.B) {
	s := benchServer()
	r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
	r.Header.Set("X-Execution-Id", "exec-123")
	r.Header.Set("X-Trace-Id", "trace-456")
	b.ReportAllocs()
	for b.Loop() {
		var req request
		if msg := s.parse(r, benchPayload, &req); msg != "" {
			b.Fatal(msg)
		}
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	s := benchServer()
	r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
	body := []byte(`{"execution_id":"exec-123","trace_id":"trace-456","payload":` + string(benchPayload) + `,"timeout_ms":5000}`)
	b.ReportAllocs()
	for b.Loop() {
		var req request
		if msg := s.parse(r, body, &req); msg != "" {
			b.Fatal(msg)
		}
	}
}

func BenchmarkParseEnvelopeWithCallback(b *testing.B) {
	s := benchServer()
	r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
	body := []byte(`{"execution_id":"exec-123","callback_url":"http://control-plane:8080/v1/internal/executions","payload":` + string(benchPayload) + `}`)
	b.ReportAllocs()
	for b.Loop() {
		var req request
		if msg := s.parse(r, body, &req); msg != "" {
			b.Fatal(msg)
		}
	}
}

func BenchmarkResultBodySuccess(b *testing.B) {
	res := result.Success(json.RawMessage(benchPayload))
	res.DurationMs = 3
	b.ReportAllocs()
	for b.Loop() {
		_ = resultBody("exec-123", &res)
	}
}

func BenchmarkResultBodyFailure(b *testing.B) {
	res := result.Failure(result.FunctionError, "function failed with exit code 3; stderr: Traceback (most recent call last): ...")
	res = res.WithExitCode(3)
	b.ReportAllocs()
	for b.Loop() {
		_ = resultBody("exec-123", &res)
	}
}

// BenchmarkWriteRawOutput is the answer of a header-form success: the
// output as the function produced it.
func BenchmarkWriteRawOutput(b *testing.B) {
	r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		writeJSON(w, r, http.StatusOK, benchPayload)
	}
}

func BenchmarkWriteError(b *testing.B) {
	r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		writeError(w, r, http.StatusTooManyRequests, CodeBusy, "another invocation is in flight: this watchdog runs one at a time")
	}
}

type discardWriter struct {
	h   http.Header
	buf bytes.Buffer
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) WriteHeader(int)     {}
func (d *discardWriter) Write(p []byte) (int, error) {
	d.buf.Reset()
	return d.buf.Write(p)
}
