package emulator

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"nanofaas.dev/devkit/receiver"
)

// The control-plane API: upstream nanofaas 0.5.0's endpoints, status codes
// and bodies (see openapi.yaml, served at OpenAPIPath), plus the emulator's
// extras (execution history, measured figures, warm watchdog state).

// APIVersion is the upstream control-plane API version the emulator serves.
const APIVersion = "0.5.0"

// OpenAPIPath is where serve publishes its OpenAPI document.
const OpenAPIPath = "/v1/openapi.yaml"

// MaxRequestBytes is the largest request body the API accepts (413 past
// it): the watchdog's MAX_PAYLOAD_BYTES default, so that whatever the API
// takes, a warm watchdog takes too.
const MaxRequestBytes = 16 << 20

// MaxTimeoutMs is the largest X-Timeout-Ms and timeoutMs (upstream's bound).
const MaxTimeoutMs = 300000

//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPIDocument returns the emulator's OpenAPI document (YAML).
func OpenAPIDocument() []byte {
	return append([]byte(nil), openAPIDocument...)
}

// errorBody is the body of every refused request: upstream's flat
// {"error": CODE, "message": text}. A sync invoke that timed out also names
// its execution.
type errorBody struct {
	Error       string `json:"error"`
	Message     string `json:"message"`
	ExecutionID string `json:"executionId,omitempty"`
}

// apiError answers a refused request with upstream's flat error body.
func apiError(w http.ResponseWriter, status int, code, format string, args ...any) {
	writeJSON(w, status, errorBody{Error: code, Message: fmt.Sprintf(format, args...)})
}

// methods maps an HTTP method to its handler for one path.
type methods map[string]http.HandlerFunc

// Handler is the control-plane API.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, receiver.ExecutionsPath+"/") {
			s.recv.ServeHTTP(w, r)
			return
		}
		ms := s.route(r)
		if ms == nil {
			apiError(w, http.StatusNotFound, "NOT_FOUND", "no route for %s %s; the API is described at GET %s", r.Method, r.URL.Path, OpenAPIPath)
			return
		}
		h := ms[r.Method]
		if h == nil && r.Method == http.MethodHead {
			h = ms[http.MethodGet]
		}
		if h == nil {
			allow := make([]string, 0, len(ms))
			for m := range ms {
				allow = append(allow, m)
			}
			sort.Strings(allow)
			w.Header().Set("Allow", strings.Join(allow, ", "))
			apiError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "%s %s is not served: use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))
			return
		}
		h(w, r)
	})
}

// route finds the handlers of a request's path (nil: no such path).
func (s *Server) route(r *http.Request) methods {
	path := r.URL.Path
	switch path {
	case "/v1/functions":
		return methods{http.MethodGet: s.handleFunctions, http.MethodPost: s.handleRegister}
	case "/v1/executions":
		return methods{http.MethodGet: s.handleExecutions}
	case "/health":
		return methods{http.MethodGet: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}}
	case OpenAPIPath:
		return methods{http.MethodGet: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write(openAPIDocument)
		}}
	case "/v1/admin/runtime-config":
		return methods{http.MethodGet: adminDisabled, http.MethodPatch: adminDisabled}
	case "/v1/admin/runtime-config/validate":
		return methods{http.MethodPost: adminDisabled}
	}
	if rest, ok := strings.CutPrefix(path, "/v1/functions/"); ok && rest != "" && !strings.Contains(rest, "/") {
		name, verb, hasVerb := strings.Cut(rest, ":")
		if !hasVerb {
			return methods{
				http.MethodGet:    func(w http.ResponseWriter, r *http.Request) { s.handleFunction(w, r, name) },
				http.MethodDelete: func(w http.ResponseWriter, r *http.Request) { s.handleDelete(w, r, name) },
			}
		}
		if verb != "invoke" && verb != "enqueue" {
			return nil
		}
		return methods{http.MethodPost: func(w http.ResponseWriter, r *http.Request) { s.handleCall(w, r, name, verb == "enqueue") }}
	}
	if id, ok := strings.CutPrefix(path, "/v1/executions/"); ok && id != "" && !strings.Contains(id, "/") {
		return methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) { s.handleExecution(w, r, id) }}
	}
	return s.uiRoute(path)
}

// adminDisabled answers the runtime-config endpoints as upstream does when
// nanofaas.admin.runtime-config.enabled is false.
func adminDisabled(w http.ResponseWriter, _ *http.Request) {
	apiError(w, http.StatusNotFound, "NOT_FOUND", "the admin runtime-config API is disabled in the emulator (upstream: nanofaas.admin.runtime-config.enabled=false)")
}

// readJSONBody checks the Content-Type and the size of a request body and
// reads it. binaryOK accepts application/octet-stream too (reported by
// binary). It answers the request itself when it reports false.
func readJSONBody(w http.ResponseWriter, r *http.Request, binaryOK bool) (body []byte, binary, ok bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")):
		case err == nil && binaryOK && mt == "application/octet-stream":
			binary = true
		default:
			accepted := "application/json"
			if binaryOK {
				accepted += " or application/octet-stream"
			}
			apiError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Content-Type %q is not accepted: send %s (curl: -H 'Content-Type: application/json')", ct, accepted)
			return nil, false, false
		}
	}
	if r.ContentLength > MaxRequestBytes {
		w.Header().Set("Connection", "close")
		apiError(w, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", "the body is %d bytes, over the limit of %d bytes", r.ContentLength, MaxRequestBytes)
		return nil, false, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			w.Header().Set("Connection", "close")
			apiError(w, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", "the body is over the limit of %d bytes", MaxRequestBytes)
			return nil, false, false
		}
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "cannot read the body: %v", err)
		return nil, false, false
	}
	return body, binary, true
}

// invocationResponse is the sync invoke's answer (upstream's
// InvocationResponse).
type invocationResponse struct {
	ExecutionID string          `json:"executionId"`
	Status      string          `json:"status"`
	Output      json.RawMessage `json:"output,omitempty"`
	Error       *ErrorInfo      `json:"error,omitempty"`
}

// invocationRequest is upstream's InvocationRequest.
type invocationRequest struct {
	Input    *json.RawMessage  `json:"input"`
	Metadata map[string]string `json:"metadata"`
}

// parseTimeoutHeader reads X-Timeout-Ms (0 when absent).
func parseTimeoutHeader(r *http.Request) (time.Duration, error) {
	v := r.Header.Get("X-Timeout-Ms")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 1 || n > MaxTimeoutMs {
		return 0, fmt.Errorf("X-Timeout-Ms %q: a whole number of milliseconds from 1 to %d", v, MaxTimeoutMs)
	}
	return time.Duration(n) * time.Millisecond, nil
}

func (s *Server) handleCall(w http.ResponseWriter, r *http.Request, name string, async bool) {
	s.mu.Lock()
	e, closing := s.functions[name], s.closing
	s.mu.Unlock()
	if closing {
		w.Header().Set("Connection", "close")
		apiError(w, http.StatusServiceUnavailable, "SHUTTING_DOWN", "the emulator is stopping")
		return
	}
	if e == nil {
		apiError(w, http.StatusNotFound, "FUNCTION_NOT_FOUND", "no function %q; registered: %s", name, strings.Join(s.names(), ", "))
		return
	}
	body, binary, ok := readJSONBody(w, r, true)
	if !ok {
		return
	}
	var payload json.RawMessage
	var meta map[string]string
	if binary {
		// Upstream passes a binary body as the input; the watchdog takes
		// JSON, so it becomes a JSON string (base64 unless it is UTF-8).
		text := string(body)
		if !utf8.Valid(body) {
			text = base64.StdEncoding.EncodeToString(body)
		}
		payload, _ = json.Marshal(text)
	} else {
		var req invocationRequest
		if err := json.Unmarshal(body, &req); err != nil {
			apiError(w, http.StatusBadRequest, "BAD_REQUEST", `the body must be {"input": <payload>, "metadata": {...}}: %v`, err)
			return
		}
		input := json.RawMessage("null") // upstream: a missing input is null
		if req.Input != nil {
			input = *req.Input
		}
		p, err := CompactJSON(input, "input")
		if err != nil {
			apiError(w, http.StatusBadRequest, "BAD_REQUEST", "%v", err)
			return
		}
		payload, meta = p, req.Metadata
	}
	timeout, err := parseTimeoutHeader(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "%v", err)
		return
	}
	s.mu.Lock()
	fn := e.fn
	s.mu.Unlock()
	// Like upstream, X-Timeout-Ms bounds the call: it can shorten the
	// function's timeout, not extend it.
	if timeout == 0 || timeout > fn.Timeout {
		timeout = fn.Timeout
	}
	inv := Invocation{ID: NewExecutionID(), TraceID: r.Header.Get("X-Trace-Id"), Payload: payload, Timeout: timeout, Env: s.env}
	if inv.TraceID == "" {
		inv.TraceID = meta["traceId"]
	}
	ex := s.start(e, fn, inv, async, r.Header.Get("Idempotency-Key"))
	w.Header().Set("X-Execution-Id", ex.ID)
	if async {
		writeJSON(w, http.StatusAccepted, map[string]string{"executionId": ex.ID, "status": ExecQueued})
		return
	}
	// The watchdog enforces the timeout; the margin covers starting it.
	limit := timeout + readyTimeout(envList(fn.Env)) + 15*time.Second
	select {
	case <-ex.done:
	case <-time.After(limit):
		writeJSON(w, http.StatusRequestTimeout, errorBody{Error: StatusTimeout, ExecutionID: ex.ID,
			Message: fmt.Sprintf("no result within %v; the execution goes on: GET /v1/executions/%s", limit, ex.ID)})
		return
	case <-r.Context().Done():
		return
	}
	v := s.view(ex)
	if v.Status == ExecTimeout {
		writeJSON(w, http.StatusRequestTimeout, errorBody{Error: v.Error.Code, Message: v.Error.Message, ExecutionID: ex.ID})
		return
	}
	writeJSON(w, http.StatusOK, invocationResponse{ExecutionID: v.ExecutionID, Status: v.Status, Output: v.Output, Error: v.Error})
}

// executionStatuses are the values of ?status= and of an execution's status.
var executionStatuses = []string{ExecQueued, ExecRunning, ExecSuccess, ExecError, ExecTimeout}

func (s *Server) handleExecution(w http.ResponseWriter, _ *http.Request, id string) {
	s.mu.Lock()
	ex := s.execs[id]
	s.mu.Unlock()
	if ex == nil {
		apiError(w, http.StatusNotFound, "EXECUTION_NOT_FOUND", "no execution %q (the history keeps the last %d)", id, s.opts.History)
		return
	}
	writeJSON(w, http.StatusOK, s.view(ex))
}

func (s *Server) handleExecutions(w http.ResponseWriter, r *http.Request) {
	limit := s.opts.History
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			apiError(w, http.StatusBadRequest, "BAD_REQUEST", "limit %q: a whole number greater than 0", v)
			return
		}
		limit = n
	}
	fn := q.Get("function")
	status := strings.ToLower(q.Get("status"))
	if status != "" && !contains(executionStatuses, status) {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "status %q: one of %s", q.Get("status"), strings.Join(executionStatuses, ", "))
		return
	}
	s.mu.Lock()
	var list []*Execution
	for i := len(s.order) - 1; i >= 0 && len(list) < limit; i-- {
		ex := s.execs[s.order[i]]
		if (fn == "" || ex.Function == fn) && (status == "" || ex.Status == status) {
			list = append(list, ex)
		}
	}
	s.mu.Unlock()
	views := make([]executionView, 0, len(list))
	for _, ex := range list {
		views = append(views, s.view(ex))
	}
	writeJSON(w, http.StatusOK, views)
}

func contains(list []string, v string) bool {
	for _, l := range list {
		if l == v {
			return true
		}
	}
	return false
}

func (s *Server) handleFunctions(w http.ResponseWriter, _ *http.Request) {
	views := []functionResponse{}
	for _, name := range s.names() {
		s.mu.Lock()
		e := s.functions[name]
		s.mu.Unlock()
		if e != nil {
			views = append(views, s.functionResponse(e))
		}
	}
	writeJSON(w, http.StatusOK, views)
}

func (s *Server) handleFunction(w http.ResponseWriter, _ *http.Request, name string) {
	s.mu.Lock()
	e := s.functions[name]
	s.mu.Unlock()
	if e == nil {
		apiError(w, http.StatusNotFound, "FUNCTION_NOT_FOUND", "no function %q; registered: %s", name, strings.Join(s.names(), ", "))
		return
	}
	writeJSON(w, http.StatusOK, s.functionResponse(e))
}

func (s *Server) handleDelete(w http.ResponseWriter, _ *http.Request, name string) {
	s.mu.Lock()
	e := s.functions[name]
	if e != nil {
		delete(s.functions, name)
	}
	s.mu.Unlock()
	if e == nil {
		apiError(w, http.StatusNotFound, "FUNCTION_NOT_FOUND", "no function %q; registered: %s", name, strings.Join(s.names(), ", "))
		return
	}
	s.log.Printf("function %s: deleted", name)
	if e.inst != nil {
		// Invocations in flight finish (the instance takes them one at a
		// time); the watchdog stops after them.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			e.inst.Stop()
		}()
	}
	s.events.functionRemoved(name)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	body, _, ok := readJSONBody(w, r, false)
	if !ok {
		return
	}
	var spec FunctionSpec
	if err := json.Unmarshal(body, &spec); err != nil {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "the body must be a FunctionSpec (name, image, runtimeMode, ...; see %s): %v", OpenAPIPath, err)
		return
	}
	fn, err := spec.function()
	if err != nil {
		apiError(w, http.StatusBadRequest, "VALIDATION_ERROR", "%v", err)
		return
	}
	s.mu.Lock()
	_, exists := s.functions[fn.Name]
	closing := s.closing
	s.mu.Unlock()
	switch {
	case closing:
		apiError(w, http.StatusServiceUnavailable, "SHUTTING_DOWN", "the emulator is stopping")
		return
	case exists:
		apiError(w, http.StatusConflict, "FUNCTION_EXISTS", "function %q is already registered: DELETE /v1/functions/%s first to replace it", fn.Name, fn.Name)
		return
	}
	if status, code, err := checkImage(fn.Image); err != nil {
		apiError(w, status, code, "%v", err)
		return
	}
	runner := &Runner{Watchdog: s.opts.Watchdog, Docker: true, Log: s.out}
	base, err := s.dockerCallbacks(s.addr)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "DOCKER_UNAVAILABLE", "cannot run function %s: %v", fn.Name, err)
		return
	}
	runner.CallbackBase = base
	e := &entry{fn: fn}
	e.inst = NewInstance(runner, fn, newPrefixWriter(s.out, "["+fn.Name+"] "))
	s.mu.Lock()
	if _, exists := s.functions[fn.Name]; exists {
		s.mu.Unlock()
		apiError(w, http.StatusConflict, "FUNCTION_EXISTS", "function %q is already registered: DELETE /v1/functions/%s first to replace it", fn.Name, fn.Name)
		return
	}
	s.functions[fn.Name] = e
	s.mu.Unlock()
	s.log.Printf("function %s: registered through the API: %s", fn.Name, s.describe(fn))
	s.startInstance(fn.Name, e)
	s.events.functionChanged(fn.Name)
	writeJSON(w, http.StatusCreated, s.functionResponse(e))
}

// checkImage tells whether a registered function's image can run here: the
// HTTP status and code to answer when it cannot.
func checkImage(image string) (int, string, error) {
	if _, err := CheckDocker(); err != nil {
		return http.StatusServiceUnavailable, "DOCKER_UNAVAILABLE", fmt.Errorf("a function registered through the API runs in its image, which needs Docker: %v (scripts/docker-up.sh starts it here); without Docker, run a local function directory with 'emulator serve -f DIR'", err)
	}
	if err := imagePresent(image); err != nil {
		return http.StatusUnprocessableEntity, "IMAGE_NOT_FOUND", err
	}
	return 0, "", nil
}
