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
	Env []string
	// Resources limit the containers of manifests without "resources"
	// (--docker only).
	Resources *ResourceSpec
	Watchdog  Watchdog
	Self      string
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
	events *hub
	env    map[string]string
	// base is the callback URL the watchdogs get; dockerBase the one
	// containers get ("" until a container needs it).
	base       string
	dockerBase string
	dockerLn   *listener
	// addr is where the API listens.
	addr *net.TCPAddr

	runCtx    context.Context
	cancelRun context.CancelFunc
	sem       chan struct{}
	wg        sync.WaitGroup

	mu        sync.Mutex
	closing   bool
	functions map[string]*entry
	execs     map[string]*Execution
	order     []string
	// idem maps a function and an Idempotency-Key to its execution.
	idem map[string]string
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
	// warm executions are answered by POST /invoke: their callback (the
	// watchdog posts one too when it has a CALLBACK_URL) is expected.
	warm bool
	// idemKey is its key in Server.idem ("" without Idempotency-Key).
	idemKey string
}

// executionView is an execution as the API shows it: upstream's
// ExecutionStatus (executionId, status, startedAt, finishedAt, output,
// error), then the emulator's extra fields. Unknown values are left out.
type executionView struct {
	ExecutionID string          `json:"executionId"`
	Status      string          `json:"status"`
	StartedAt   *time.Time      `json:"startedAt,omitempty"`
	FinishedAt  *time.Time      `json:"finishedAt,omitempty"`
	Output      json.RawMessage `json:"output,omitempty"`
	Error       *ErrorInfo      `json:"error,omitempty"`
	Function    string          `json:"function"`
	Async       bool            `json:"async"`
	CreatedAt   time.Time       `json:"createdAt"`
	QueuedMs    *int64          `json:"queuedMs,omitempty"`
	TotalMs     *int64          `json:"totalMs,omitempty"`
	InitMs      *int64          `json:"initMs,omitempty"`
	DurationMs  *int64          `json:"durationMs,omitempty"`
	MaxRSSKB    *int64          `json:"maxRssKb,omitempty"`
	// MaxRSSMethod says how maxRssKb was measured ("vmhwm-sampled" or
	// "cgroup"); left out when it was not.
	MaxRSSMethod *string `json:"maxRssMethod,omitempty"`
	ExitCode     *int    `json:"exitCode,omitempty"`
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
	if o.Listen, err = NormalizeListen(o.Listen); err != nil {
		return nil, &UsageError{Err: err}
	}
	if _, err := o.Resources.dockerFlags(); err != nil {
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
		idem:      map[string]string{},
	}
	s.runCtx, s.cancelRun = context.WithCancel(context.Background())
	s.events = newHub(o.History, s.functionSnapshot)
	s.runner.Log = &logTee{out: out, hub: s.events}
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
		if o.Docker && fn.Resources == nil {
			fn.Resources = o.Resources
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
			e.inst = NewInstance(s.runner, fn, newPrefixWriter(s.runner.Log, "["+fn.Name+"] "))
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
	s.addr = addr
	host := "127.0.0.1"
	if s.runner.Docker {
		host = DockerHost
	}
	s.base = fmt.Sprintf("http://%s:%d%s", host, addr.Port, receiver.ExecutionsPath)
	if s.runner.Docker {
		base, err := s.dockerCallbacks(addr)
		if err != nil {
			ln.Close()
			return &UsageError{Err: fmt.Errorf("serve --docker: %w", err)}
		}
		s.base = base
	}
	defer func() {
		if s.dockerLn != nil {
			s.dockerLn.Close()
		}
	}()
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	names := s.names()
	s.log.Printf("serving the nanofaas control-plane API %s on http://%s (functions: %s; the API is described at %s)", APIVersion, addr, strings.Join(names, ", "), OpenAPIPath)
	s.log.Printf("the page: http://%s%s", addr, UIPath)
	for _, name := range names {
		e := s.functions[name]
		s.log.Printf("function %s: %s", name, s.describe(e.fn))
		s.startInstance(name, e)
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
	s.events.close()
	var stops sync.WaitGroup
	s.mu.Lock()
	entries := make([]*entry, 0, len(s.functions))
	for _, e := range s.functions {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	for _, e := range entries {
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

// startInstance starts a warm function's watchdog in the background.
func (s *Server) startInstance(name string, e *entry) {
	if e.inst == nil {
		return
	}
	go func() {
		if err := e.inst.Start(s.runCtx); err != nil && !errors.Is(err, errStopped) {
			s.log.Printf("function %s: the warm watchdog did not start: %v (trying again at the first invocation)", name, err)
		}
	}()
}

// dockerCallbacks returns the callback URL for containers. They reach this
// machine as host.docker.internal (Docker's host-gateway, the bridge's
// gateway address): an API listening on every address serves them itself;
// otherwise a second listener, on the gateway address only, takes them, so
// the API stays on 127.0.0.1.
func (s *Server) dockerCallbacks(api *net.TCPAddr) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dockerBase != "" {
		return s.dockerBase, nil
	}
	if api.IP.IsUnspecified() {
		s.dockerBase = fmt.Sprintf("http://%s:%d%s", DockerHost, api.Port, receiver.ExecutionsPath)
		return s.dockerBase, nil
	}
	gw, err := dockerGateway()
	if err != nil {
		return "", fmt.Errorf("containers call back to %s, which the API on %s cannot receive, and %w; listen on every address instead: --listen 0.0.0.0:%d", DockerHost, api, err, api.Port)
	}
	ln, err := listen(net.JoinHostPort(gw, "0"), s.recv)
	if err != nil {
		return "", fmt.Errorf("containers call back to %s (%s), but %w; listen on every address instead: --listen 0.0.0.0:%d", DockerHost, gw, err, api.Port)
	}
	s.dockerLn = ln
	s.dockerBase = fmt.Sprintf("http://%s:%d%s", DockerHost, ln.Port, receiver.ExecutionsPath)
	s.log.Printf("containers call back on %s:%d (Docker's bridge gateway, %s inside them)", gw, ln.Port, DockerHost)
	return s.dockerBase, nil
}

func (s *Server) describe(fn *Function) string {
	kind := fn.Mode
	if fn.Warm && fn.Mode != "WARM" {
		kind += ", warm"
	}
	if fn.Spec != nil {
		return fmt.Sprintf("%s in image %s, deployed warm as upstream deploys it", kind, fn.Image)
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

// start records an execution and runs it in the background.
// With an idempotency key already used for the function, it returns that
// key's execution instead.
func (s *Server) start(e *entry, fn *Function, inv Invocation, async bool, key string) *Execution {
	ex := &Execution{ID: inv.ID, Function: fn.Name, Async: async, Status: ExecQueued, Created: time.Now(), done: make(chan struct{}), warm: fn.Warm}
	s.mu.Lock()
	if key != "" {
		ex.idemKey = fn.Name + "\x00" + key
		if prev := s.execs[s.idem[ex.idemKey]]; prev != nil {
			s.mu.Unlock()
			return prev
		}
		s.idem[ex.idemKey] = ex.ID
	}
	s.execs[ex.ID] = ex
	s.order = append(s.order, ex.ID)
	s.trimLocked()
	s.mu.Unlock()
	s.publishStart(ex, inv.Payload)
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
		s.publish(ex)
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
	s.publish(ex)
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
			if ex.idemKey != "" {
				delete(s.idem, ex.idemKey)
			}
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
	ex, known := s.execs[id]
	s.mu.Unlock()
	if known && ex.warm {
		// A warm watchdog with a CALLBACK_URL posts the result it also
		// answered /invoke with.
		return http.StatusNoContent
	}
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

// NormalizeListen accepts --listen as HOST:PORT, :PORT (every address) or a
// bare PORT (127.0.0.1:PORT).
func NormalizeListen(listen string) (string, error) {
	if listen == "" {
		return "127.0.0.1:8090", nil
	}
	if n, err := strconv.Atoi(listen); err == nil {
		if n < 0 || n > 65535 {
			return "", fmt.Errorf("--listen %s: a port is 0 to 65535", listen)
		}
		return "127.0.0.1:" + listen, nil
	}
	if _, port, err := net.SplitHostPort(listen); err != nil || port == "" {
		return "", fmt.Errorf("--listen %q: give HOST:PORT (127.0.0.1:8090), :PORT (every address) or PORT", listen)
	}
	return listen, nil
}

// Serve runs the serve command; it returns when ctx ends.
func Serve(ctx context.Context, o ServeOptions, stderr io.Writer) error {
	s, err := NewServer(o, stderr)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}
