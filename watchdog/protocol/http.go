package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/process"
	"nanofaas.dev/watchdog/result"
)

// pollInterval is how often HEALTH_URL is polled while the runtime starts.
const pollInterval = 15 * time.Millisecond

// HTTP runs a function that is an HTTP server: it is spawned by Start,
// polled at HEALTH_URL until ready, invoked with POST RUNTIME_URL, and
// stopped (group, grace, kill) by Stop.
type HTTP struct {
	cfg    config.Config
	deps   Deps
	client *http.Client

	mu    sync.Mutex
	child *process.Child
}

// NewHTTP returns an HTTP runtime that has not been started.
func NewHTTP(cfg config.Config, deps Deps) *HTTP {
	transport := &http.Transport{
		Proxy:               nil, // the runtime is local: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &HTTP{cfg: cfg, deps: deps, client: &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Exited is closed when the runtime process that Start spawned has exited.
func (h *HTTP) Exited() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.child == nil {
		closed := make(chan struct{})
		close(closed)
		return closed
	}
	return h.child.Done()
}

// Pid returns the runtime process's pid, or 0 when none was started.
func (h *HTTP) Pid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.child == nil {
		return 0
	}
	return h.child.Pid
}

// ExitStatus says how the runtime process ended, with the tail of its
// stderr; ok is false while it runs or when none was started. The server
// lifecycle uses it to explain why a warm runtime is being restarted.
func (h *HTTP) ExitStatus() (exit process.Exit, stderrTail string, ok bool) {
	h.mu.Lock()
	c := h.child
	h.mu.Unlock()
	if c == nil || !c.Exited() {
		return process.Exit{}, "", false
	}
	return c.Exit(), c.StderrTail(), true
}

// Start spawns the runtime and waits until HEALTH_URL answers 2xx, the
// runtime exits with a failure, or READY_TIMEOUT_MS passes.
func (h *HTTP) Start(ctx context.Context) *result.Result {
	start := time.Now()
	port := strconv.Itoa(h.cfg.RuntimePort)
	c, err := h.deps.Procs.StartChild(process.Options{
		Argv:       h.cfg.Command,
		Env:        childEnv(h.cfg.Env, "PORT="+port, "SERVER_PORT="+port),
		StdoutSink: h.deps.Stdout,
		StderrSink: h.deps.Stderr,
	})
	if err != nil {
		r := spawnFailure(err).Took(start)
		return &r
	}
	h.mu.Lock()
	h.child = c
	h.mu.Unlock()

	fail := func(r result.Result) *result.Result {
		c.Finish(h.cfg.KillGrace)
		r = r.Took(start)
		return &r
	}
	deadline := time.NewTimer(h.cfg.ReadyTimeout)
	defer deadline.Stop()
	exited := c.Done()
	lastProblem := "no answer yet"
	for {
		ok, problem := h.healthy(ctx)
		if ok {
			h.deps.Log.Debug("runtime ready", "pid", c.Pid, "ms", time.Since(start).Milliseconds())
			return nil
		}
		lastProblem = problem
		select {
		case <-ctx.Done():
			return fail(result.Failure(result.StartupError, "watchdog shut down while the runtime was starting"))
		case <-deadline.C:
			return fail(result.Failure(result.StartupError, "runtime not ready within READY_TIMEOUT_MS=%d: %s returned %s%s",
				h.cfg.ReadyTimeout.Milliseconds(), h.cfg.HealthURL, lastProblem, stderrSuffix(c.StderrTail())))
		case <-exited:
			exit := c.Exit()
			if !exit.Success() {
				r := result.Failure(result.StartupError, "runtime exited with %s before it was ready%s", exit, stderrSuffix(c.StderrTail()))
				if exit.Signal == 0 {
					r = r.WithExitCode(exit.Code)
				}
				return fail(r)
			}
			// Exit 0: the runtime may have daemonised its server; keep polling.
			h.deps.Log.Debug("runtime process exited 0 before ready; polling on", "pid", c.Pid)
			exited = nil
		case <-time.After(pollInterval):
		}
	}
}

// healthy polls HEALTH_URL once.
func (h *HTTP) healthy(ctx context.Context) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.cfg.HealthURL, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return false, describeTransportError(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return true, ""
	}
	return false, "HTTP " + strconv.Itoa(resp.StatusCode)
}

// Healthy reports whether the runtime answers HEALTH_URL with 2xx now.
func (h *HTTP) Healthy(ctx context.Context) bool {
	ok, _ := h.healthy(ctx)
	return ok
}

// Invoke posts the payload to RUNTIME_URL.
func (h *HTTP) Invoke(ctx context.Context, inv Invocation) result.Result {
	start := time.Now()
	h.mu.Lock()
	c := h.child
	h.mu.Unlock()
	payload := []byte(inv.Payload)
	if payload == nil {
		payload = []byte("null")
	}
	reqCtx, cancel := context.WithTimeout(ctx, inv.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, h.cfg.RuntimeURL, bytes.NewReader(payload))
	if err != nil {
		return result.Failure(result.FunctionError, "cannot build the request to RUNTIME_URL: %v", err).Took(start)
	}
	req.Header.Set("Content-Type", "application/json")
	if inv.ExecutionID != "" {
		req.Header.Set("X-Execution-Id", inv.ExecutionID)
	}
	if inv.TraceID != "" {
		req.Header.Set("X-Trace-Id", inv.TraceID)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(reqCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
			return result.Failure(result.Timeout, "Function exceeded timeout of %dms", inv.Timeout.Milliseconds()).Took(start)
		case ctx.Err() != nil:
			return result.Failure(result.FunctionError, "invocation interrupted because the watchdog is shutting down").Took(start)
		}
		return h.connectionFailure(c, err).Took(start)
	}
	defer resp.Body.Close()
	limit := h.cfg.MaxOutputBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if errors.Is(reqCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return result.Failure(result.Timeout, "Function exceeded timeout of %dms", inv.Timeout.Milliseconds()).Took(start)
		}
		return result.Failure(result.FunctionError, "cannot read the runtime's response: %v", err).Took(start)
	}
	if int64(len(body)) > limit {
		return result.Failure(result.FunctionError, "runtime response body exceeded MAX_OUTPUT_BYTES=%d", limit).Took(start)
	}
	if resp.StatusCode/100 != 2 {
		return result.Failure(result.FunctionError, "runtime answered HTTP %d: %s", resp.StatusCode, excerpt(bytes.TrimSpace(body), 1000)).Took(start)
	}
	if resp.StatusCode == http.StatusNoContent && len(bytes.TrimSpace(body)) == 0 {
		return result.Success(nil).Took(start)
	}
	doc, bad := checkOutput("the runtime's response body", body)
	if bad != nil {
		return bad.Took(start)
	}
	return result.Success(doc).Took(start)
}

// connectionFailure explains a failed request, with the runtime's exit
// status when it died.
func (h *HTTP) connectionFailure(c *process.Child, err error) result.Result {
	if c != nil {
		select {
		case <-c.Done():
		case <-time.After(100 * time.Millisecond):
		}
		if c.Exited() {
			exit := c.Exit()
			r := result.Failure(result.FunctionError, "runtime exited with %s during the invocation%s", exit, stderrSuffix(c.StderrTail()))
			if exit.Signal == 0 {
				r = r.WithExitCode(exit.Code)
			}
			return r
		}
	}
	return result.Failure(result.FunctionError, "request to RUNTIME_URL %s failed: %s", h.cfg.RuntimeURL, describeTransportError(err))
}

// Stop stops the runtime's process group (SIGTERM, grace, SIGKILL).
func (h *HTTP) Stop() {
	h.mu.Lock()
	c := h.child
	h.mu.Unlock()
	if c != nil {
		c.Finish(h.cfg.KillGrace)
	}
	h.client.CloseIdleConnections()
}

func describeTransportError(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return fmt.Sprintf("%s (%v)", opErr.Op, opErr.Err)
	}
	return err.Error()
}
