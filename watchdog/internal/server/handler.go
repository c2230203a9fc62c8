package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"nanofaas.dev/watchdog/internal/callback"
	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/metrics"
	"nanofaas.dev/watchdog/internal/oneshot"
	"nanofaas.dev/watchdog/internal/protocol"
	"nanofaas.dev/watchdog/result"
)

// maxTimeout is the largest timeout_ms an envelope may ask for.
const maxTimeout = 24 * time.Hour

var (
	readyBody    = healthBody("ready", nil, 0)
	drainingBody = healthBody("draining", nil, 0)
)

// ServeHTTP routes /invoke, /health and /metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/invoke":
		s.serveInvoke(w, r)
	case "/health":
		s.serveHealth(w, r)
	case "/metrics":
		s.serveMetrics(w, r)
	default:
		writeError(w, r, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no such endpoint %q: the watchdog serves POST /invoke, GET /health and GET /metrics", r.URL.Path))
	}
}

// serveHealth answers 200 only while the runtime is ready; 503 while it
// starts, restarts, cannot start (with the reason) or the watchdog drains.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.methodNotAllowed(w, r, hdrAllowGet)
		return
	}
	w.Header()["Cache-Control"] = hdrNoStore
	switch {
	case s.draining.Load():
		writeJSON(w, r, http.StatusServiceUnavailable, drainingBody)
	case s.warm != nil || s.lines != nil:
		var ready bool
		var body []byte
		if s.lines != nil {
			ready, body = s.lines.healthState()
		} else {
			ready, body = s.warm.healthState()
		}
		status := http.StatusServiceUnavailable
		if ready {
			status = http.StatusOK
		}
		writeJSON(w, r, status, body)
	default:
		writeJSON(w, r, http.StatusOK, readyBody)
	}
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.methodNotAllowed(w, r, hdrAllowGet)
		return
	}
	var b bytes.Buffer
	s.m.WritePrometheus(&b)
	h := w.Header()
	h.Set("Content-Type", metrics.ContentType)
	h["Cache-Control"] = hdrNoStore
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow []string) {
	w.Header()["Allow"] = allow
	writeError(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed,
		fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, r.URL.Path, allow[0]))
}

// refuse answers a request that runs no invocation and counts it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	s.m.Rejected(code)
	writeError(w, r, status, code, message)
}

// request is one parsed /invoke request.
type request struct {
	executionID string
	traceID     string
	callbackURL string
	payload     json.RawMessage
	timeout     time.Duration
	// headerForm: X-Execution-Id was given and the body is the payload; a
	// success answers the raw output.
	headerForm bool
}

// envelope is the seed's request body.
type envelope struct {
	ExecutionID string          `json:"execution_id"`
	CallbackURL string          `json:"callback_url"`
	TraceID     string          `json:"trace_id"`
	Payload     json.RawMessage `json:"payload"`
	TimeoutMs   *int64          `json:"timeout_ms"`
}

func (s *Server) serveInvoke(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodGet, http.MethodHead:
		// The nanofaas control plane probes readiness with GET /invoke.
		s.serveHealth(w, r)
		return
	default:
		s.methodNotAllowed(w, r, hdrAllowPost)
		return
	}
	if s.authHash != nil && !s.authorized(r) {
		w.Header()["Www-Authenticate"] = hdrBearer
		s.refuse(w, r, http.StatusUnauthorized, CodeUnauthorized, "missing or wrong Authorization: Bearer token (WARM_AUTH_TOKEN is set)")
		return
	}
	if s.draining.Load() {
		s.refuse(w, r, http.StatusServiceUnavailable, CodeShuttingDown, "the watchdog is shutting down and takes no new invocations")
		return
	}
	// The slot is taken before the body is read, so that concurrent
	// uploads are refused at once instead of each being buffered (N of them
	// would cost N x MAX_PAYLOAD_BYTES). A body that never comes holds it
	// for at most the server's read timeout.
	if !s.busy.CompareAndSwap(false, true) {
		s.refuseBusy(w, r)
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		s.unclaim()
		return
	}
	var req request
	if msg := s.parse(r, body, &req); msg != "" {
		s.unclaim()
		s.refuse(w, r, http.StatusBadRequest, CodeBadRequest, msg)
		return
	}
	if s.draining.Load() {
		s.unclaim()
		s.refuse(w, r, http.StatusServiceUnavailable, CodeShuttingDown, "the watchdog is shutting down and takes no new invocations")
		return
	}
	s.run(w, r, &req)
}

func (s *Server) refuseBusy(w http.ResponseWriter, r *http.Request) {
	w.Header()["Retry-After"] = hdrRetryAfter
	s.refuse(w, r, http.StatusTooManyRequests, CodeBusy, "another invocation is in flight: this watchdog runs one at a time")
}

// authorized checks the bearer token in constant time (both sides hashed,
// so neither the content nor the length of the token leaks).
func (s *Server) authorized(r *http.Request) bool {
	const prefix = "Bearer "
	v := r.Header.Get("Authorization")
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(v[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], s.authHash[:]) == 1
}

// readBody reads the whole body up to MAX_PAYLOAD_BYTES; it answers 413 or
// 400 itself and returns false when it cannot.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	limit := s.cfg.MaxPayloadBytes
	tooLarge := func(size string) ([]byte, bool) {
		w.Header()["Connection"] = hdrClose
		s.refuse(w, r, http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
			fmt.Sprintf("the request body is %sover MAX_PAYLOAD_BYTES=%d", size, limit))
		return nil, false
	}
	if r.ContentLength > limit {
		return tooLarge(fmt.Sprintf("%d bytes, ", r.ContentLength))
	}
	var body []byte
	var err error
	if r.ContentLength >= 0 {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err == nil && int64(len(body)) > limit {
			return tooLarge("")
		}
	}
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, CodeBadRequest, "cannot read the request body: "+err.Error())
		return nil, false
	}
	return body, true
}

// parse reads the request in either form into req; it returns what is
// wrong with it, or "".
func (s *Server) parse(r *http.Request, body []byte, req *request) string {
	req.timeout = s.cfg.Timeout
	if ids := r.Header["X-Execution-Id"]; len(ids) > 0 && ids[0] != "" {
		req.headerForm = true
		req.executionID = ids[0]
		if t := r.Header["X-Trace-Id"]; len(t) > 0 {
			req.traceID = t[0]
		}
		req.callbackURL = s.cfg.CallbackURL
		if msg := checkIDs(req.executionID, req.traceID); msg != "" {
			return msg
		}
		payload := bytes.TrimSpace(body)
		switch {
		case len(payload) == 0:
			req.payload = nullJSON
		case !json.Valid(payload):
			return "the request body is not valid JSON (with an X-Execution-Id header, the whole body is the payload)"
		default:
			req.payload = payload
		}
		return ""
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Sprintf(`the request body is not an invocation envelope (%v): send {"execution_id":"...","payload":...}, or the payload alone with an X-Execution-Id header`, err)
	}
	if env.ExecutionID == "" {
		return `execution_id is missing: send {"execution_id":"...","payload":...}, or the payload alone with an X-Execution-Id header`
	}
	req.executionID = env.ExecutionID
	req.traceID = env.TraceID
	if req.traceID == "" {
		if t := r.Header["X-Trace-Id"]; len(t) > 0 {
			req.traceID = t[0]
		}
	}
	if msg := checkIDs(req.executionID, req.traceID); msg != "" {
		return msg
	}
	req.payload = env.Payload
	if len(req.payload) == 0 {
		req.payload = nullJSON
	}
	if env.TimeoutMs != nil {
		ms := *env.TimeoutMs
		if ms <= 0 || ms > maxTimeout.Milliseconds() {
			return fmt.Sprintf("timeout_ms=%d is out of range: a whole number of milliseconds from 1 to %d", ms, maxTimeout.Milliseconds())
		}
		req.timeout = time.Duration(ms) * time.Millisecond
	}
	req.callbackURL = s.cfg.CallbackURL
	if env.CallbackURL != "" {
		u, err := url.Parse(env.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Sprintf("callback_url %q is not an absolute http:// or https:// URL", env.CallbackURL)
		}
		// A callback URL from a request makes the watchdog POST the result
		// wherever the request says (server-side request forgery):
		// CALLBACK_ALLOWED_PREFIXES limits where. CALLBACK_URL is trusted.
		if prefixes := s.cfg.CallbackAllowedPrefixes; len(prefixes) > 0 {
			if target := callback.URL(env.CallbackURL, req.executionID); !callback.Allowed(target, prefixes) {
				return fmt.Sprintf("callback_url %q is not allowed: the result would be posted to %q, which is not under any of the URL prefixes in CALLBACK_ALLOWED_PREFIXES", env.CallbackURL, target)
			}
		}
		req.callbackURL = env.CallbackURL
	}
	return ""
}

// checkIDs says what is wrong with the ids of a request, or "": they travel
// as HTTP headers to the runtime and the callback, and in the function's
// environment.
func checkIDs(executionID, traceID string) string {
	if msg := config.CheckID(executionID); msg != "" {
		return fmt.Sprintf("execution_id %s cannot be used: it has %s (an id is UTF-8 text of at most %d bytes without control characters or surrounding blanks)", quoteID(executionID), msg, config.MaxIDBytes)
	}
	if msg := config.CheckID(traceID); msg != "" {
		return fmt.Sprintf("trace_id %s cannot be used: it has %s (an id is UTF-8 text of at most %d bytes without control characters or surrounding blanks)", quoteID(traceID), msg, config.MaxIDBytes)
	}
	return ""
}

// quoteID quotes an id for a message, cut short when it is long.
func quoteID(id string) string {
	if len(id) > 64 {
		return strconv.Quote(id[:64]) + "..."
	}
	return strconv.Quote(id)
}

// run runs an invocation that holds the slot, releases the slot, and
// answers. The result also goes to the callback URL, when one is known,
// without delaying the answer.
func (s *Server) run(w http.ResponseWriter, r *http.Request, req *request) {
	start := time.Now()
	s.m.Started()
	// The connection must outlive the invocation: its wait for the runtime,
	// its timeout, and the kill grace of a timed-out function.
	rc := http.NewResponseController(w)
	deadline := start.Add(2*req.timeout + s.cfg.KillGrace + budgetSlack)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)

	inv := protocol.Invocation{ExecutionID: req.executionID, TraceID: req.traceID, Payload: req.payload, Timeout: req.timeout}
	var res result.Result
	if s.warm != nil {
		rt, failed := s.warm.acquire(req.timeout)
		if failed != nil {
			res = *failed
		} else {
			res = rt.Invoke(context.Background(), inv)
			s.warm.finished(rt, &res)
		}
	} else if s.lines != nil {
		rt, failed := s.lines.acquire(req.timeout)
		if failed != nil {
			res = *failed
		} else {
			res = rt.Invoke(context.Background(), inv)
			s.lines.finished(rt, &res)
		}
	} else {
		res = s.perCall.Invoke(context.Background(), inv)
	}
	took := time.Since(start)
	res.DurationMs = took.Milliseconds()
	s.m.Finished(res.Success, res.ErrorCode() == result.Timeout, took)
	// The delivery is registered while the slot is held (so a drain that
	// sees the slot free also sees it), but sent only once the slot is
	// free: a control plane that sends the next invocation as soon as it
	// has this result must not get 429 BUSY.
	var send func()
	if req.callbackURL != "" {
		send = s.deliver(req, res)
	}
	s.release()
	if send != nil {
		go send()
	}

	if req.headerForm && res.Success {
		out := []byte(res.Output)
		if out == nil {
			out = nullJSON
		}
		writeJSON(w, r, http.StatusOK, out)
	} else {
		writeJSON(w, r, StatusFor(res.ErrorCode()), resultBody(req.executionID, &res))
	}
	// The answer goes out now, not when the handler returns: the log line
	// (a write to stderr) is not part of the caller's latency.
	_ = rc.Flush()
	s.logInvocation(req, &res, took)
}

// logInvocation writes the one line an invocation gets at info level. The
// payload and the output are never logged.
func (s *Server) logInvocation(req *request, res *result.Result, took time.Duration) {
	ctx := context.Background()
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs, slog.String("execution_id", req.executionID))
	if req.traceID != "" {
		attrs = append(attrs, slog.String("trace_id", req.traceID))
	}
	attrs = append(attrs, slog.Bool("success", res.Success), slog.Int64("duration_ms", took.Milliseconds()))
	if res.Error != nil {
		attrs = append(attrs, slog.String("error_code", string(res.Error.Code)), slog.String("message", res.Error.LogMessage()))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "invocation finished", attrs...)
}

// deliver registers the result's delivery to the callback URL and returns
// the function that posts it, with the one-shot retry rules, to be run in
// its own goroutine; nil when the result is not attempted. An undelivered
// result is logged whole (nothing is lost) and counted. Shutdown waits for
// pending deliveries, bounded (see waitDeliveries).
//
// Pending deliveries are bounded (maxPendingDeliveries results, and
// maxPendingBytes of them): a control plane that hangs must not make the
// watchdog hold a goroutine, a connection and a result for every
// invocation. A result that does not fit is not attempted; it is logged
// whole as undelivered, like one whose every attempt failed.
func (s *Server) deliver(req *request, res result.Result) func() {
	log := s.log.With("execution_id", req.executionID)
	if req.traceID != "" {
		log = log.With("trace_id", req.traceID)
	}
	base, id, trace := req.callbackURL, req.executionID, req.traceID
	size := int64(len(res.Output)) + 512
	if res.Error != nil {
		size += int64(len(res.Error.Message))
	}
	if pending, ok := s.reserveDelivery(size); !ok {
		s.m.CallbackFailed()
		log.Error("callback undelivered", "undelivered", true, "url", callback.URL(base, id), "attempts", 0,
			"error", fmt.Sprintf("not attempted: %d callbacks are already pending (at most %d, and %d bytes of results): the control plane is not taking results", pending, maxPendingDeliveries, maxPendingBytes),
			"result", json.RawMessage(res.Marshal()))
		return nil
	}
	s.deliveries.Add(1)
	return func() {
		defer s.deliveries.Done()
		defer s.releaseDelivery(size)
		if oneshot.Deliver(s.deliveryCtx, base, id, trace, res, s.cb, log) != oneshot.ExitDelivered {
			s.m.CallbackFailed()
		}
	}
}

// reserveDelivery counts a result of size bytes as pending, unless the
// bounds are reached; the first one always fits. It returns how many were
// pending.
func (s *Server) reserveDelivery(size int64) (int, bool) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	n := s.pendingN
	if n >= maxPendingDeliveries || n > 0 && s.pendingBytes+size > maxPendingBytes {
		return n, false
	}
	s.pendingN++
	s.pendingBytes += size
	return n, true
}

func (s *Server) releaseDelivery(size int64) {
	s.pendingMu.Lock()
	s.pendingN--
	s.pendingBytes -= size
	s.pendingMu.Unlock()
}
