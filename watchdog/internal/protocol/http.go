package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/events"
	"nanofaas.dev/watchdog/internal/process"
	"nanofaas.dev/watchdog/result"
)

// HEALTH_URL is polled while the runtime starts: every pollFirst for the
// first pollFastFor, then at intervals growing by half up to pollInterval.
// A runtime that is ready within a few milliseconds (a compiled server) is
// found within a millisecond of it, not up to pollInterval later; a slow
// one (a JVM) is polled every pollInterval from about 100 ms on. A poll of
// a port that nothing listens on yet is refused at once and costs next to
// nothing.
const (
	pollFirst    = time.Millisecond
	pollFastFor  = 50 * time.Millisecond
	pollInterval = 15 * time.Millisecond
)

// exitedStderrWait bounds the wait for the last of a runtime's stderr
// after it exited, for the message that quotes it. A daemon that inherited
// stderr keeps the pipe open: the message then quotes what came so far.
const exitedStderrWait = 100 * time.Millisecond

// maxRuntimeHeaderBytes bounds the response headers of the runtime.
const maxRuntimeHeaderBytes = 1 << 20

// nextPoll returns the interval after wait, elapsed since the runtime was
// spawned.
func nextPoll(wait, elapsed time.Duration) time.Duration {
	if elapsed < pollFastFor {
		return pollFirst
	}
	return min(wait+wait/2, pollInterval)
}

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
		Proxy:       nil, // the runtime is local: never through a proxy
		DialContext: (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// One kept-alive connection per invocation that may run at once.
		MaxIdleConnsPerHost: max(4, cfg.WarmConcurrency),
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		// A runtime that sends headers without end costs at most this much.
		MaxResponseHeaderBytes: maxRuntimeHeaderBytes,
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
	return c.Exit(), c.StderrTailWithin(exitedStderrWait), true
}

// Daemonising is true: an HTTP runtime's first process may fork its server
// into the background and exit 0.
func (h *HTTP) Daemonising() bool { return true }

// Start spawns the runtime and waits until HEALTH_URL answers 2xx, the
// runtime exits with a failure, or READY_TIMEOUT_MS passes.
func (h *HTTP) Start(ctx context.Context) *result.Result {
	start := time.Now()
	port := strconv.Itoa(h.cfg.RuntimePort)
	c, err := h.deps.Procs.StartChild(process.Options{
		Argv:       h.cfg.Command,
		Env:        childEnv(h.cfg, "PORT="+port, "SERVER_PORT="+port),
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
	wait := pollFirst
	for {
		ok, problem := h.healthy(ctx)
		if ok {
			h.deps.Log.Debug(events.RuntimeReady, events.KeyPID, c.Pid, events.KeyStartupMs, time.Since(start).Milliseconds())
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
				r := result.Failure(result.StartupError, "runtime exited with %s before it was ready%s", exit, stderrSuffix(c.StderrTailWithin(exitedStderrWait)))
				if exit.Signal == 0 {
					r = r.WithExitCode(exit.Code)
				}
				return fail(r)
			}
			// Exit 0: the runtime may have daemonised its server; keep polling.
			h.deps.Log.Debug("runtime process exited 0 before ready; polling on", "pid", c.Pid)
			exited = nil
		case <-time.After(wait):
			wait = nextPoll(wait, time.Since(start))
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
	// Canonical keys set directly: no canonicalisation or slice per call.
	req.Header["Content-Type"] = hdrJSON
	if inv.ExecutionID != "" {
		req.Header["X-Execution-Id"] = []string{inv.ExecutionID}
	}
	if inv.TraceID != "" {
		req.Header["X-Trace-Id"] = []string{inv.TraceID}
	}
	resp, err := h.do(req)
	if err != nil {
		switch {
		case errors.Is(reqCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
			return result.Failure(result.Timeout, "Function exceeded timeout of %dms", inv.Timeout.Milliseconds()).Took(start)
		case ctx.Err() != nil:
			return interrupted(ctx).Took(start)
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
		if ctx.Err() != nil {
			return interrupted(ctx).Took(start)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return result.Failure(result.FunctionError, "the runtime closed the connection in the middle of its response (after %d bytes of the body): %v", len(body), err).Took(start)
		}
		return result.Failure(result.FunctionError, "cannot read the runtime's response: %v", err).Took(start)
	}
	if int64(len(body)) > limit {
		return result.Failure(result.FunctionError, "runtime response body exceeded MAX_OUTPUT_BYTES=%d", limit).Took(start)
	}
	if resp.StatusCode/100 != 2 {
		quoted := excerpt(bytes.TrimSpace(body), 1000)
		r := result.Failure(result.FunctionError, "runtime answered HTTP %d: %s", resp.StatusCode, quoted)
		r.Error.Quoted = quoted
		return r.Took(start)
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

// interrupted is the result of an invocation whose ctx was cancelled: by
// the watchdog's shutdown, or with an *Interruption as its cause (the
// runtime is being restarted under it), whose message it carries.
func interrupted(ctx context.Context) result.Result {
	var in *Interruption
	if errors.As(context.Cause(ctx), &in) {
		r := result.Failure(result.FunctionError, "%s%s", in.Message, stderrSuffix(in.StderrTail))
		if in.Exit != nil && in.Exit.Signal == 0 {
			r = r.WithExitCode(in.Exit.Code)
		}
		return r
	}
	return result.Failure(result.FunctionError, "invocation interrupted because the watchdog is shutting down")
}

// hdrJSON is the Content-Type of a request to the runtime; the transport
// only reads it.
var hdrJSON = []string{"application/json"}

// do sends an invocation request to the runtime: what h.client.Do does for
// it, without the client's redirect machinery. The client follows no
// redirect (CheckRedirect answers the first response), yet it copies the
// headers of every request in case it must; calling the transport directly
// saves that on every invocation. The answer is the same, and so are the
// errors: wrapped in a *url.Error naming the method and the URL (password
// hidden), as the client wraps them. Credentials in RUNTIME_URL become
// basic authentication, as the client makes them.
func (h *HTTP) do(req *http.Request) (*http.Response, error) {
	if u := req.URL.User; u != nil && req.Header.Get("Authorization") == "" {
		password, _ := u.Password()
		req.SetBasicAuth(u.Username(), password)
	}
	resp, err := h.client.Transport.RoundTrip(req)
	if err != nil {
		return nil, &url.Error{Op: "Post", URL: redactedURL(req.URL), Err: err}
	}
	return resp, nil
}

// redactedURL is u with its password replaced by ***, as http.Client
// shows a URL in its errors.
func redactedURL(u *url.URL) string {
	if _, set := u.User.Password(); set {
		return strings.Replace(u.String(), u.User.String()+"@", u.User.Username()+":***@", 1)
	}
	return u.String()
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
			r := result.Failure(result.FunctionError, "runtime exited with %s during the invocation%s", exit, stderrSuffix(c.StderrTailWithin(exitedStderrWait)))
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
