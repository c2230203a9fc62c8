package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/procio"
	"nanofaas.dev/watchdog/result"
)

// Execution statuses of the control-plane API.
const (
	ExecQueued  = "queued"
	ExecRunning = "running"
	ExecSuccess = "success"
	ExecError   = "error"
	ExecTimeout = "timeout"
)

// ServeOptions are the serve command's inputs.
type ServeOptions struct {
	Listen string
	// Functions are function directories or manifests (none: the demo).
	Functions []string
	// Docker runs every function in its manifest's image.
	Docker bool
	// Watch restarts warm functions (and reloads manifests) on changes.
	Watch bool
	// History is how many executions GET /v1/executions keeps.
	History int
	// Concurrency bounds the invocations that run at once.
	Concurrency int
	// Env is added to every function's environment.
	Env      []string
	Watchdog Watchdog
	Self     string
	// Ready, when not nil, gets the address the API listens on.
	Ready func(addr string)
}

// Server is the fake control plane.
type Server struct {
	opts   ServeOptions
	runner *Runner
	out    io.Writer
	log    *prefixWriter
	recv   *receiver.Receiver
	env    map[string]string
	base   string

	runCtx    context.Context
	cancelRun context.CancelFunc
	sem       chan struct{}
	wg        sync.WaitGroup

	mu        sync.Mutex
	closing   bool
	functions map[string]*entry
	execs     map[string]*Execution
	order     []string
}

// entry is a registered function.
type entry struct {
	source string
	fn     *Function
	inst   *Instance
	// pinned serialises one-shot runs whose manifest fixes RUNTIME_URL.
	pinned sync.Mutex
	// problem is why the last --watch reload was refused ("" when it was not).
	problem string
}

// Execution is one invocation known to the control plane.
type Execution struct {
	ID       string
	Function string
	Async    bool
	Status   string
	Output   json.RawMessage
	Error    *ErrorInfo
	Created  time.Time
	Started  time.Time
	Finished time.Time
	Report   *Report
	done     chan struct{}
}

// executionView is an execution as the API shows it.
type executionView struct {
	ExecutionID string          `json:"executionId"`
	Function    string          `json:"function"`
	Status      string          `json:"status"`
	Async       bool            `json:"async"`
	Output      json.RawMessage `json:"output"`
	Error       *ErrorInfo      `json:"error"`
	CreatedAt   time.Time       `json:"createdAt"`
	StartedAt   *time.Time      `json:"startedAt"`
	FinishedAt  *time.Time      `json:"finishedAt"`
	QueuedMs    *int64          `json:"queuedMs"`
	TotalMs     *int64          `json:"totalMs"`
	InitMs      *int64          `json:"initMs"`
	DurationMs  *int64          `json:"durationMs"`
	MaxRSSKB    *int64          `json:"maxRssKb"`
	// MaxRSSMethod says how maxRssKb was measured ("vmhwm-sampled" or
	// "cgroup"); null when it was not.
	MaxRSSMethod *string `json:"maxRssMethod"`
	ExitCode     *int    `json:"exitCode"`
	Runtime      string  `json:"runtime,omitempty"`
	Warm         bool    `json:"warm"`
}

// NewServer loads the functions and prepares the control plane.
func NewServer(o ServeOptions, stderr io.Writer) (*Server, error) {
	out := procio.NewSyncWriter(stderr)
	if o.History <= 0 {
		o.History = 1000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = max(4, 2*runtime.NumCPU())
	}
	env, err := ParseEnv(o.Env)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	s := &Server{
		opts:      o,
		runner:    &Runner{Watchdog: o.Watchdog, Docker: o.Docker, Log: out},
		out:       out,
		log:       newPrefixWriter(out, "emulator: "),
		env:       env,
		sem:       make(chan struct{}, o.Concurrency),
		functions: map[string]*entry{},
		execs:     map[string]*Execution{},
	}
	s.runCtx, s.cancelRun = context.WithCancel(context.Background())
	s.recv = NewReceiver(func(format string, args ...any) { s.log.Printf(format, args...) }, s.lateCallback)
	sources := o.Functions
	if len(sources) == 0 {
		sources = []string{""}
	}
	for _, src := range sources {
		var fn *Function
		if src == "" {
			fn = DemoFunction(o.Self)
		} else if fn, err = LoadManifest(src); err != nil {
			return nil, &UsageError{Err: err}
		}
		if o.Docker && fn.Image == "" {
			return nil, usagef("%s: function %s has no \"image\": serve --docker runs every function in its image", src, fn.Name)
		}
		if !o.Docker && fn.Command == "" {
			return nil, usagef("%s: function %s has no \"command\" to run on this machine: use serve --docker", src, fn.Name)
		}
		if prev, dup := s.functions[fn.Name]; dup {
			return nil, usagef("function name %s is used twice (%s and %s)", fn.Name, prev.source, src)
		}
		e := &entry{source: src, fn: fn}
		if fn.Warm {
			e.inst = NewInstance(s.runner, fn, newPrefixWriter(out, "["+fn.Name+"] "))
		}
		s.functions[fn.Name] = e
	}
	return s, nil
}

// Serve runs the control plane until ctx ends, then stops every watchdog.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", s.opts.Listen, err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	host := "127.0.0.1"
	if s.runner.Docker {
		host = DockerHost
	}
	s.base = fmt.Sprintf("http://%s:%d%s", host, addr.Port, receiver.ExecutionsPath)
	if s.runner.Docker && !addr.IP.IsUnspecified() {
		s.log.Printf("warning: --docker containers call back to %s, but the API listens on %s only; use --listen 0.0.0.0:%d", DockerHost, addr, addr.Port)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	names := s.names()
	s.log.Printf("serving the nanofaas control-plane API on http://%s (functions: %s)", addr, strings.Join(names, ", "))
	for _, name := range names {
		e := s.functions[name]
		s.log.Printf("function %s: %s", name, s.describe(e.fn))
		if e.inst != nil {
			go func() {
				if err := e.inst.Start(s.runCtx); err != nil && !errors.Is(err, errStopped) {
					s.log.Printf("function %s: the warm watchdog did not start: %v (trying again at the first invocation)", name, err)
				}
			}()
		}
	}
	var stopWatch func()
	if s.opts.Watch {
		if stopWatch, err = s.watch(); err != nil {
			s.log.Printf("--watch: %v", err)
		}
	}
	if s.opts.Ready != nil {
		s.opts.Ready(addr.String())
	}
	select {
	case <-ctx.Done():
		s.log.Printf("stopping (%v): no new invocations; stopping every watchdog", context.Cause(ctx))
	case err := <-serveErr:
		s.log.Printf("the API server stopped: %v", err)
	}
	if stopWatch != nil {
		stopWatch()
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	// Stop the executions first, so that the requests waiting for them are
	// answered, then the server.
	s.cancelRun()
	var stops sync.WaitGroup
	for _, e := range s.functions {
		if e.inst != nil {
			stops.Add(1)
			go func() { defer stops.Done(); e.inst.Stop() }()
		}
	}
	s.wg.Wait()
	stops.Wait()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	s.log.Printf("stopped")
	return nil
}

func (s *Server) describe(fn *Function) string {
	kind := fn.Mode
	if fn.Warm && fn.Mode != "WARM" {
		kind += ", warm"
	}
	if s.runner.Docker {
		return fmt.Sprintf("%s in image %s", kind, fn.Image)
	}
	return fmt.Sprintf("%s, %q in %s", kind, fn.Command, fn.Dir)
}

func (s *Server) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.functions))
	for n := range s.functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Handler is the control-plane API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/functions/{call}", s.handleCall)
	mux.HandleFunc("GET /v1/functions", s.handleFunctions)
	mux.HandleFunc("GET /v1/functions/{name}", s.handleFunction)
	mux.HandleFunc("GET /v1/executions", s.handleExecutions)
	mux.HandleFunc("GET /v1/executions/{id}", s.handleExecution)
	mux.Handle("POST "+receiver.ExecutionsPath+"/{complete}", s.recv)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no route for %s %s; see the emulator README for the API", r.Method, r.URL.Path))
	})
	return mux
}

// invocationResponse is the sync invoke's answer.
type invocationResponse struct {
	ExecutionID string          `json:"executionId"`
	Status      string          `json:"status"`
	Output      json.RawMessage `json:"output"`
	Error       *ErrorInfo      `json:"error"`
}

// invocationRequest is the control plane's request body.
type invocationRequest struct {
	Input    *json.RawMessage  `json:"input"`
	Metadata map[string]string `json:"metadata"`
}

func (s *Server) handleCall(w http.ResponseWriter, r *http.Request) {
	name, verb, ok := strings.Cut(r.PathValue("call"), ":")
	if !ok || (verb != "invoke" && verb != "enqueue") {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "use POST /v1/functions/{name}:invoke or POST /v1/functions/{name}:enqueue")
		return
	}
	s.mu.Lock()
	e, closing := s.functions[name], s.closing
	s.mu.Unlock()
	if closing {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusServiceUnavailable, "SHUTTING_DOWN", "the emulator is stopping")
		return
	}
	if e == nil {
		writeError(w, http.StatusNotFound, "FUNCTION_NOT_FOUND", fmt.Sprintf("no function %q; registered: %s", name, strings.Join(s.names(), ", ")))
		return
	}
	body, ok := readBody(w, r, "PAYLOAD_TOO_LARGE", fmt.Sprintf("the body is over %d bytes", maxResultBytes))
	if !ok {
		return
	}
	var req invocationRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Input == nil {
		msg := "the body must be {\"input\": <payload>, \"metadata\": {...}} (metadata optional)"
		if err != nil {
			msg += ": " + err.Error()
		}
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", msg)
		return
	}
	payload, err := CompactJSON(*req.Input, "input")
	if err != nil {
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	var timeout time.Duration
	if v := r.Header.Get("X-Timeout-Ms"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("X-Timeout-Ms %q: a whole number of milliseconds greater than 0", v))
			return
		}
		timeout = time.Duration(n) * time.Millisecond
	}
	s.mu.Lock()
	fn := e.fn
	s.mu.Unlock()
	if timeout == 0 || timeout > fn.Timeout {
		timeout = fn.Timeout
	}
	inv := Invocation{ID: NewExecutionID(), TraceID: r.Header.Get("X-Trace-Id"), Payload: payload, Timeout: timeout, Env: s.env}
	if inv.TraceID == "" {
		inv.TraceID = req.Metadata["traceId"]
	}
	ex := s.start(e, fn, inv, verb == "enqueue")
	w.Header().Set("X-Execution-Id", ex.ID)
	if verb == "enqueue" {
		writeJSON(w, http.StatusAccepted, map[string]string{"executionId": ex.ID, "status": ExecQueued})
		return
	}
	// The watchdog enforces the timeout; the margin covers starting it.
	limit := timeout + readyTimeout(envList(fn.Env)) + 15*time.Second
	select {
	case <-ex.done:
	case <-time.After(limit):
		v := s.view(ex)
		v.Error = &ErrorInfo{Code: StatusTimeout, Message: fmt.Sprintf("no result within %v; the execution goes on: GET /v1/executions/%s", limit, ex.ID)}
		writeJSON(w, http.StatusGatewayTimeout, v)
		return
	case <-r.Context().Done():
		return
	}
	v := s.view(ex)
	resp := invocationResponse{ExecutionID: v.ExecutionID, Status: v.Status, Output: v.Output, Error: v.Error}
	status := http.StatusOK
	if v.Status == ExecTimeout {
		status = http.StatusGatewayTimeout
	}
	writeJSON(w, status, resp)
}

// start records an execution and runs it in the background.
func (s *Server) start(e *entry, fn *Function, inv Invocation, async bool) *Execution {
	ex := &Execution{ID: inv.ID, Function: fn.Name, Async: async, Status: ExecQueued, Created: time.Now(), done: make(chan struct{})}
	s.mu.Lock()
	s.execs[ex.ID] = ex
	s.order = append(s.order, ex.ID)
	s.trimLocked()
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(ex.done)
		select {
		case s.sem <- struct{}{}:
		case <-s.runCtx.Done():
			s.complete(ex, Outcome{Report: Report{ExecutionID: ex.ID, Function: fn.Name, Status: StatusWatchdogError, DurationMs: -1, InitMs: -1, MaxRSSKB: -1}, Problem: "the emulator stopped before the execution started"})
			return
		}
		defer func() { <-s.sem }()
		s.mu.Lock()
		ex.Status, ex.Started = ExecRunning, time.Now()
		s.mu.Unlock()
		var out Outcome
		switch {
		case e.inst != nil:
			out = e.inst.Invoke(s.runCtx, inv)
		default:
			if _, ok := fn.Env["RUNTIME_URL"]; ok && !s.runner.Docker {
				e.pinned.Lock()
				defer e.pinned.Unlock()
			}
			out = s.runner.RunOnce(s.runCtx, fn, inv, s.recv, s.base)
		}
		s.complete(ex, out)
	}()
	return ex
}

// complete records an outcome and logs its line.
func (s *Server) complete(ex *Execution, out Outcome) {
	s.mu.Lock()
	ex.Finished = time.Now()
	r := out.Report
	ex.Report = &r
	switch {
	case out.Status == StatusSuccess:
		ex.Status, ex.Output = ExecSuccess, out.Result.Output
	case out.Status == StatusTimeout:
		ex.Status = ExecTimeout
	default:
		ex.Status = ExecError
	}
	if ex.Status != ExecSuccess {
		ex.Error = &ErrorInfo{Code: out.Status, Message: out.ErrorMessage()}
	}
	s.mu.Unlock()
	if ex.Error != nil {
		s.log.Printf("[%s] %s: %s", ex.ID, ex.Error.Code, ex.Error.Message)
	}
	fmt.Fprintln(s.out, r.LogLine())
}

// trimLocked forgets the oldest finished executions beyond the history.
func (s *Server) trimLocked() {
	excess := len(s.order) - s.opts.History
	if excess <= 0 {
		return
	}
	kept := s.order[:0]
	for _, id := range s.order {
		ex := s.execs[id]
		if excess > 0 && !ex.Finished.IsZero() {
			delete(s.execs, id)
			excess--
			continue
		}
		kept = append(kept, id)
	}
	s.order = kept
}

// lateCallback answers a callback that no run waits for: a known execution
// (a duplicate or late delivery) is acknowledged, an unknown one refused.
func (s *Server) lateCallback(id string, res result.Result) int {
	s.mu.Lock()
	_, known := s.execs[id]
	s.mu.Unlock()
	if known {
		s.log.Printf("[%s] late or repeated callback (status %s) acknowledged and ignored", id, res.Status())
		return http.StatusNoContent
	}
	return http.StatusNotFound
}

func (s *Server) view(ex *Execution) executionView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := executionView{ExecutionID: ex.ID, Function: ex.Function, Status: ex.Status, Async: ex.Async,
		Output: ex.Output, Error: ex.Error, CreatedAt: ex.Created}
	if len(v.Output) == 0 {
		v.Output = json.RawMessage("null")
	}
	if !ex.Started.IsZero() {
		t := ex.Started
		v.StartedAt = &t
		q := ex.Started.Sub(ex.Created).Milliseconds()
		v.QueuedMs = &q
	}
	if !ex.Finished.IsZero() {
		t := ex.Finished
		v.FinishedAt = &t
	}
	if r := ex.Report; r != nil {
		v.TotalMs = known(r.TotalMs)
		v.InitMs = known(r.InitMs)
		v.DurationMs = known(r.DurationMs)
		v.MaxRSSKB = known(r.MaxRSSKB)
		if v.MaxRSSKB != nil {
			v.MaxRSSMethod = &r.MaxRSSMethod
		}
		v.ExitCode = r.ExitCode
		v.Runtime = r.Runtime
		v.Warm = r.Warm
	}
	return v
}

func known(n int64) *int64 {
	if n < 0 {
		return nil
	}
	return &n
}

func (s *Server) handleExecution(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	ex := s.execs[id]
	s.mu.Unlock()
	if ex == nil {
		writeError(w, http.StatusNotFound, "EXECUTION_NOT_FOUND", fmt.Sprintf("no execution %q (the history keeps the last %d)", id, s.opts.History))
		return
	}
	writeJSON(w, http.StatusOK, s.view(ex))
}

func (s *Server) handleExecutions(w http.ResponseWriter, r *http.Request) {
	limit := s.opts.History
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("limit %q: a whole number greater than 0", v))
			return
		}
		limit = n
	}
	fn := r.URL.Query().Get("function")
	status := r.URL.Query().Get("status")
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

// functionView is a registered function as the API shows it.
type functionView struct {
	Name      string            `json:"name"`
	Mode      string            `json:"mode"`
	Warm      bool              `json:"warm"`
	Command   string            `json:"command,omitempty"`
	Dir       string            `json:"dir,omitempty"`
	Image     string            `json:"image,omitempty"`
	TimeoutMs int64             `json:"timeoutMs"`
	Env       map[string]string `json:"env"`
	Manifest  string            `json:"manifest,omitempty"`
	// ManifestError says why the manifest, changed on disk, was not
	// reloaded (--watch): the previous definition still runs.
	ManifestError string `json:"manifestError,omitempty"`
	// Watchdog is the warm watchdog's state (warm functions only).
	Watchdog *InstanceStatus `json:"watchdog,omitempty"`
}

func (s *Server) functionView(e *entry) functionView {
	s.mu.Lock()
	fn, problem := e.fn, e.problem
	s.mu.Unlock()
	v := functionView{Name: fn.Name, Mode: fn.Mode, Warm: fn.Warm, Command: fn.Command, Dir: fn.Dir, Image: fn.Image,
		TimeoutMs: fn.Timeout.Milliseconds(), Env: fn.Env, Manifest: fn.Manifest, ManifestError: problem}
	if e.inst != nil {
		st := e.inst.Status()
		v.Watchdog = &st
	}
	return v
}

func (s *Server) handleFunctions(w http.ResponseWriter, _ *http.Request) {
	views := []functionView{}
	for _, name := range s.names() {
		s.mu.Lock()
		e := s.functions[name]
		s.mu.Unlock()
		views = append(views, s.functionView(e))
	}
	writeJSON(w, http.StatusOK, views)
}

func (s *Server) handleFunction(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	e := s.functions[name]
	s.mu.Unlock()
	if e == nil {
		writeError(w, http.StatusNotFound, "FUNCTION_NOT_FOUND", fmt.Sprintf("no function %q", name))
		return
	}
	writeJSON(w, http.StatusOK, s.functionView(e))
}

// Serve runs the serve command; it returns when ctx ends.
func Serve(ctx context.Context, o ServeOptions, stderr io.Writer) error {
	s, err := NewServer(o, stderr)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}
