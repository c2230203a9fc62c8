package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"nanofaas.dev/watchdog/result"
)

// CallbackPath is where the watchdog posts results: CALLBACK_URL is
// http://HOST:PORT/v1/internal/executions, and the watchdog appends
// /{id}:complete (the nanofaas control plane's endpoint).
const CallbackPath = "/v1/internal/executions"

// maxResultBytes bounds a callback body (the watchdog's MAX_OUTPUT_BYTES
// default is 32 MiB, plus the envelope).
const maxResultBytes = 64 << 20

// Callback is one delivered result: the watchdog's result body (a
// watchdog that reports no duration_ms leaves DurationMs at
// result.NoDuration).
type Callback struct {
	Result result.Result
	At     time.Time
}

// Receiver accepts the watchdogs' callbacks and hands each result to
// whoever expects its execution id.
type Receiver struct {
	// Unknown is called for a callback nobody expects; it returns the
	// status to answer (the default answers 404).
	Unknown func(id string, res result.Result) int
	// Log receives one line for every callback that is refused.
	Log func(format string, args ...any)

	mu      sync.Mutex
	waiting map[string]*pending
	// delivered remembers recent ids, so that a retried delivery is
	// acknowledged rather than refused.
	delivered map[string]bool
}

type pending struct {
	ch     chan Callback
	before func()
}

// NewReceiver returns a receiver that expects nothing yet.
func NewReceiver(log func(format string, args ...any)) *Receiver {
	return &Receiver{Log: log, waiting: map[string]*pending{}, delivered: map[string]bool{}}
}

// Expect registers an execution id. before, when not nil, runs when its
// result arrives and before the watchdog is answered (while it still runs).
// The channel gets the first result delivered for id.
func (r *Receiver) Expect(id string, before func()) <-chan Callback {
	p := &pending{ch: make(chan Callback, 1), before: before}
	r.mu.Lock()
	r.waiting[id] = p
	r.mu.Unlock()
	return p.ch
}

// Forget stops expecting id.
func (r *Receiver) Forget(id string) {
	r.mu.Lock()
	delete(r.waiting, id)
	r.mu.Unlock()
}

// ServeHTTP handles POST {CallbackPath}/{id}:complete.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rest, ok := strings.CutPrefix(req.URL.Path, CallbackPath+"/")
	id, isComplete := strings.CutSuffix(rest, ":complete")
	if !ok || !isComplete || id == "" || strings.Contains(id, "/") {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "callbacks go to POST "+CallbackPath+"/{executionId}:complete")
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use POST")
		return
	}
	body, ok := readBody(w, req, "TOO_LARGE", fmt.Sprintf("a result is at most %d bytes", maxResultBytes))
	if !ok {
		return
	}
	res, err := result.DecodeFrom(bytes.NewReader(body))
	if err != nil {
		r.logf("callback for %s refused: the body is not a result: %v", id, err)
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", "the body must be {\"success\":bool,\"output\":...,\"error\":null|{\"code\",\"message\"}}: "+err.Error())
		return
	}
	at := time.Now()
	r.mu.Lock()
	p := r.waiting[id]
	delete(r.waiting, id)
	duplicate := r.delivered[id]
	if p != nil {
		if len(r.delivered) >= 10000 {
			r.delivered = map[string]bool{}
		}
		r.delivered[id] = true
	}
	r.mu.Unlock()
	if p == nil && duplicate {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if p == nil {
		status := http.StatusNotFound
		if r.Unknown != nil {
			status = r.Unknown(id, res)
		}
		if status == http.StatusNotFound {
			r.logf("callback for unknown execution %s (status %s) answered 404", id, res.Status())
			writeError(w, http.StatusNotFound, "UNKNOWN_EXECUTION", "no execution "+id+" is waiting for a result")
			return
		}
		w.WriteHeader(status)
		return
	}
	if p.before != nil {
		p.before()
	}
	p.ch <- Callback{Result: res, At: at}
	w.WriteHeader(http.StatusNoContent)
}

func (r *Receiver) logf(format string, args ...any) {
	if r.Log != nil {
		r.Log(format, args...)
	}
}

// listener is a running HTTP server for a receiver of its own (invoke).
type listener struct {
	srv  *http.Server
	ln   net.Listener
	Port int
}

// listen serves h on addr ("127.0.0.1:0", or "0.0.0.0:0" for containers).
func listen(addr string, h http.Handler) (*listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &listener{srv: srv, ln: ln, Port: ln.Addr().(*net.TCPAddr).Port}, nil
}

func (l *listener) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.srv.Shutdown(ctx)
	_ = l.srv.Close()
}

// ErrorInfo is the error object of the control plane's API,
// {"code","message"}: an execution's error (a watchdog's error code, or
// CONFIG_ERROR / WATCHDOG_ERROR) or a refused request's. It has the shape of
// a result's error (result.Error) but not its codes.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// readBody reads a request's body, at most maxResultBytes. When it cannot,
// it answers 400, or 413 with code and tooLarge, and reports false.
func readBody(w http.ResponseWriter, req *http.Request, code, tooLarge string) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxResultBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", "cannot read the body: "+err.Error())
		return nil, false
	}
	if len(body) > maxResultBytes {
		writeError(w, http.StatusRequestEntityTooLarge, code, tooLarge)
		return nil, false
	}
	return body, true
}

// writeError answers a JSON error: {"error":{"code","message"}}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": ErrorInfo{Code: code, Message: message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
