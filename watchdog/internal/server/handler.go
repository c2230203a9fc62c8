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

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/events"
	"nanofaas.dev/watchdog/internal/callback"
	"nanofaas.dev/watchdog/internal/metrics"
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
	closeAfterTransferEncoding(w, r)
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

// serveHealth answers 200 only while the runtime is ready (a full queue
// included); 503 while it starts, restarts, cannot start (with the
// reason) or the watchdog drains.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.methodNotAllowed(w, r, hdrAllowGet)
		return
	}
	w.Header()["Cache-Control"] = hdrNoStore
	switch {
	case s.draining.Load():
		writeJSON(w, r, http.StatusServiceUnavailable, drainingBody)
	case s.warm != nil:
		ready, body := s.warm.healthState()
		status := http.StatusServiceUnavailable
		if ready {
			status = http.StatusOK
			body = s.queueHealth(body)
		}
		writeJSON(w, r, status, body)
	default:
		writeJSON(w, r, http.StatusOK, s.queueHealth(readyBody))
	}
}

// queueHealth is the body of a ready /health: as it is, or, when the
// queue is full, with "queue_full":true and the counts. The status stays
// 200: the runtime is ready and what waits will be served; a readiness
// probe that failed on load would take the only replica out of service and
// turn every 429 into a connection error.
func (s *Server) queueHealth(ready []byte) []byte {
	if !s.q.full() {
		return ready
	}
	_, running, waiting := s.q.counts()
	b := append([]byte(nil), ready[:len(ready)-1]...)
	b = append(b, `,"queue_full":true,"in_flight":`...)
	b = strconv.AppendInt(b, int64(running), 10)
	b = append(b, `,"queued":`...)
	b = strconv.AppendInt(b, int64(waiting), 10)
	return append(b, '}')
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
		s.refuseDraining(w, r)
		return
	}
	// A place in the queue is taken once the body starts (readBody), and
	// a slot only once it is read and parsed (run).
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var req request
	if msg := s.parse(r, body, &req); msg != "" {
		s.q.leave()
		s.refuse(w, r, http.StatusBadRequest, CodeBadRequest, msg)
		return
	}
	if s.draining.Load() {
		s.q.leave()
		s.refuseDraining(w, r)
		return
	}
	s.run(w, r, &req)
}

func (s *Server) refuseBusy(w http.ResponseWriter, r *http.Request) {
	w.Header()["Retry-After"] = hdrRetryAfter
	_, running, waiting := s.q.counts()
	s.refuse(w, r, http.StatusTooManyRequests, CodeBusy, fmt.Sprintf(
		"all %d invocation slots are busy and the queue is full (%d running, %d waiting; WARM_CONCURRENCY=%d, WARM_QUEUE_SIZE=%d): retry later",
		s.q.concurrency, running, waiting, s.q.concurrency, s.q.size))
}

func (s *Server) refuseDraining(w http.ResponseWriter, r *http.Request) {
	w.Header()["Retry-After"] = hdrRetryAfter
	s.refuse(w, r, http.StatusServiceUnavailable, CodeShuttingDown, "the watchdog is shutting down and takes no new invocations")
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

// readBody takes a place in the queue once the body starts (at once
// when there is none) and reads the whole body up to MAX_PAYLOAD_BYTES.
// It answers 429, 413 or 400 itself and returns false when it cannot;
// otherwise the caller holds the place and must leave it.
//
// Waiting for the first byte holds nothing: a client that sends
// "Expect: 100-continue" (net/http answers "100 Continue" at the first
// read) and then no body only keeps its connection, bounded by the read
// timeout and WARM_MAX_CONNECTIONS, never a slot or a place.
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
	var first [1]byte
	n := 0
	var err error
	if r.ContentLength != 0 {
		for n == 0 && err == nil {
			n, err = r.Body.Read(first[:])
		}
		if err == io.EOF {
			err = nil
		}
	}
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, CodeBadRequest, "cannot read the request body: "+err.Error())
		return nil, false
	}
	if !s.q.enter() {
		if s.draining.Load() {
			s.refuseDraining(w, r)
		} else {
			s.refuseBusy(w, r)
		}
		return nil, false
	}
	fail := func(b []byte, ok bool) ([]byte, bool) {
		s.q.leave()
		return b, ok
	}
	var body []byte
	switch {
	case n == 0:
	case r.ContentLength > 0:
		body = make([]byte, r.ContentLength)
		body[0] = first[0]
		_, err = io.ReadFull(r.Body, body[1:])
	default:
		body, err = io.ReadAll(io.LimitReader(io.MultiReader(bytes.NewReader(first[:]), r.Body), limit+1))
		if err == nil && int64(len(body)) > limit {
			return fail(tooLarge(""))
		}
	}
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, CodeBadRequest, "cannot read the request body: "+err.Error())
		return fail(nil, false)
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
	if err := decodeEnvelope(body, &env); err != nil {
		if ke, ok := err.(*keyError); ok {
			return ke.msg
		}
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
		return fmt.Sprintf("execution_id %s cannot be used: it has %s (an id is UTF-8 text of at most %d bytes without control or invisible characters or surrounding blanks)", quoteID(executionID), msg, config.MaxIDBytes)
	}
	if msg := config.CheckID(traceID); msg != "" {
		return fmt.Sprintf("trace_id %s cannot be used: it has %s (an id is UTF-8 text of at most %d bytes without control or invisible characters or surrounding blanks)", quoteID(traceID), msg, config.MaxIDBytes)
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

// run waits for a slot for a request that holds a place, runs the
// invocation, frees the slot and the place, and answers. The result also
// goes to the callback URL, when one is known, without delaying the
// answer.
//
// The wait for a slot counts against the invocation's timeout: a request
// is answered within its timeout (plus the wait for a runtime that
// restarts, and the kill grace) however long the queue, and the function
// gets what the wait left. A request still waiting when WARM_QUEUE_TIMEOUT_MS
// (or its whole timeout) has passed never ran: 429 QUEUE_TIMEOUT, with
// Retry-After, and no callback.
func (s *Server) run(w http.ResponseWriter, r *http.Request, req *request) {
	defer s.q.leave()
	arrived := time.Now()
	// The connection must outlive the invocation: its wait in the queue
	// and for the runtime, its timeout, and the kill grace of a timed-out
	// function.
	rc := http.NewResponseController(w)
	deadline := arrived.Add(2*req.timeout + s.cfg.KillGrace + s.opts.BudgetSlack)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)

	maxWait := req.timeout
	if qt := s.cfg.WarmQueueTimeout; qt > 0 && qt < maxWait {
		maxWait = qt
	}
	adm, waited := s.q.acquire(maxWait)
	s.m.QueueWaited(waited)
	remaining := req.timeout - waited
	if adm == admitted && remaining < time.Millisecond {
		s.q.release()
		adm = waitOver
	}
	switch adm {
	case draining:
		s.refuseDraining(w, r)
		return
	case waitOver:
		w.Header()["Retry-After"] = hdrRetryAfter
		s.refuse(w, r, http.StatusTooManyRequests, CodeQueueTimeout, fmt.Sprintf(
			"no invocation slot became free within %dms (all %d are busy; the wait is bounded by WARM_QUEUE_TIMEOUT_MS and the invocation's timeout): the function did not run; retry later",
			waited.Milliseconds(), s.q.concurrency))
		return
	}

	start := time.Now()
	s.m.Started()
	inv := protocol.Invocation{ExecutionID: req.executionID, TraceID: req.traceID, Payload: req.payload, Timeout: remaining}
	var res result.Result
	if s.warm != nil {
		g, failed := s.warm.acquire(remaining)
		if failed != nil {
			res = *failed
		} else {
			res = g.rt.Invoke(g.ctx, inv)
			s.warm.finished(g, &res, req.executionID)
		}
	} else {
		invoker := <-s.perCall
		res = invoker.Invoke(context.Background(), inv)
		s.perCall <- invoker
	}
	took := time.Since(start)
	res.DurationMs = took.Milliseconds()
	if waited > 0 && res.ErrorCode() == result.Timeout {
		res.Error.Message = fmt.Sprintf("Function exceeded timeout of %dms (%dms of it waiting in the queue for a slot, %dms running)",
			req.timeout.Milliseconds(), waited.Milliseconds(), took.Milliseconds())
	}
	s.m.Finished(res.Success, res.ErrorCode() == result.Timeout, took)
	// The delivery is registered while the place is held (so a drain
	// that sees no place held also sees it), but sent only once the slot
	// is free: a control plane that sends the next invocation as soon as
	// it has this result must find the slot free.
	var send func()
	if req.callbackURL != "" {
		send = s.deliver(req, res)
	}
	s.lastEnd.Store(int64(time.Since(s.epoch)))
	s.q.release()
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
	attrs = append(attrs, slog.String(events.KeyExecutionID, req.executionID))
	if req.traceID != "" {
		attrs = append(attrs, slog.String(events.KeyTraceID, req.traceID))
	}
	attrs = append(attrs, slog.Bool(events.KeySuccess, res.Success), slog.Int64(events.KeyDurationMs, took.Milliseconds()))
	if res.Error != nil {
		attrs = append(attrs, slog.String(events.KeyErrorCode, string(res.Error.Code)), slog.String("message", res.Error.LogMessage()))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, events.InvocationFinished, attrs...)
}

// deliver registers the result's delivery to the callback URL and returns
// the function that posts it, with the one-shot retry rules, to be run in
// its own goroutine; nil when the result is not attempted. An undelivered
// result is logged whole (nothing is lost) and counted. Shutdown waits for
// pending deliveries, bounded (see waitDeliveries).
//
// Pending deliveries are bounded (Options.MaxPendingDeliveries results,
// and MaxPendingBytes of them): a control plane that hangs must not make the
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
	trusted := base == s.cfg.CallbackURL
	if why, ok := s.pending.reserve(base, trusted, size); !ok {
		s.m.CallbackFailed()
		callback.Undelivered(log, callback.Delivery{URL: callback.URL(base, id), Reason: why}, res.Marshal())
		return nil
	}
	s.deliveries.Add(1)
	return func() {
		defer s.deliveries.Done()
		defer s.pending.release(base, trusted, size)
		if d := s.cb.Deliver(s.deliveryCtx, base, id, trace, res, log); !d.Delivered {
			s.m.CallbackFailed()
		}
	}
}
