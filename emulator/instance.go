package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"nanofaas.dev/watchdog/proctree"
	"nanofaas.dev/watchdog/result"
)

// Instance is a watchdog in server mode for one function: started on first
// use, kept warm between invocations (one at a time), restarted when it dies
// or when Restart is called.
type Instance struct {
	r   *Runner
	log *prefixWriter

	mu      sync.Mutex // serialises invocations, starts and stops
	fn      *Function
	c       *child
	ctr     *container
	port    int
	cleanup func()
	stopped bool
	// pid and restarts can be read without waiting for an invocation.
	pid      atomic.Int64
	hostPort atomic.Int64
	restarts atomic.Int64
	// failures counts consecutive quick deaths, for the restart backoff.
	failures int

	client *http.Client
}

// NewInstance returns an instance that has not started yet.
func NewInstance(r *Runner, fn *Function, log *prefixWriter) *Instance {
	return &Instance{r: r, fn: fn, log: log, cleanup: func() {}, client: &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
	}}
}

// SetFunction replaces the function definition (after its manifest changed);
// it takes effect at the next start.
func (in *Instance) SetFunction(fn *Function) {
	in.mu.Lock()
	in.fn = fn
	in.mu.Unlock()
}

// Pid is the watchdog's pid (0 when not running).
func (in *Instance) Pid() int {
	return int(in.pid.Load())
}

// Invoke runs one invocation through the warm watchdog's POST /invoke,
// starting the watchdog first when it is not running.
func (in *Instance) Invoke(ctx context.Context, inv Invocation) Outcome {
	in.mu.Lock()
	defer in.mu.Unlock()
	fn := in.fn
	out := Outcome{Report: Report{ExecutionID: inv.ID, Function: fn.Name, Runtime: in.r.runtimeName(), MaxRSSKB: -1, Warm: true}, Started: time.Now()}
	if in.stopped {
		out.fail(StatusWatchdogError, "%v", errStopped)
		return out
	}
	if err := in.ensureStarted(ctx); err != nil {
		var ce *configError
		if errors.As(err, &ce) {
			out.fail(StatusConfigError, "%v", err)
		} else {
			out.fail(StatusWatchdogError, "%v", err)
		}
		return out
	}
	peaks := in.samplePeaks()
	defer peaks.Stop()
	res, err := in.post(ctx, fn, inv)
	arrived := time.Now()
	if err != nil {
		out.Ended = arrived
		out.TotalMs = arrived.Sub(out.Started).Milliseconds()
		if in.c.Exited() {
			out.fail(StatusWatchdogError, "the warm watchdog died during the invocation (%s): %v", in.c.ExitString(), err)
		} else {
			out.fail(StatusWatchdogError, "%v", err)
		}
		return out
	}
	out.finish(res, arrived)
	out.MaxRSSKB, out.MaxRSSMethod = in.peakRSS(peaks)
	return out
}

// samplePeaks follows the memory of the watchdog's runtime processes
// during an invocation (nil with Docker, where the container's cgroup
// measures it).
func (in *Instance) samplePeaks() *peakSampler {
	if in.ctr != nil {
		return nil
	}
	return samplePeaks(in.c.Pid())
}

// peakRSS is the function's peak memory so far and how it was measured: the
// container's cgroup peak, or the largest VmHWM of the runtime's processes.
func (in *Instance) peakRSS(peaks *peakSampler) (int64, string) {
	if in.ctr != nil {
		return in.ctr.PeakMemoryKB(), MethodCgroup
	}
	return peaks.Stop(), MethodSampled
}

// envelope is the watchdog's POST /invoke body in server mode.
type envelope struct {
	ExecutionID string          `json:"execution_id"`
	TraceID     string          `json:"trace_id,omitempty"`
	Payload     json.RawMessage `json:"payload"`
	TimeoutMs   int64           `json:"timeout_ms,omitempty"`
}

// post sends the invocation; a 429 (busy) is retried after Retry-After.
func (in *Instance) post(ctx context.Context, fn *Function, inv Invocation) (*result.Result, error) {
	timeout := inv.timeout(fn)
	body, err := json.Marshal(envelope{ExecutionID: inv.ID, TraceID: inv.TraceID, Payload: inv.Payload, TimeoutMs: timeout.Milliseconds()})
	if err != nil {
		return nil, fmt.Errorf("cannot encode the invocation: %w", err)
	}
	// The watchdog answers within the timeout; the margin covers a restart
	// of its runtime and a graceful stop.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout+in.r.grace()+30*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		// Interrupted: stopping the watchdog makes it answer for the
		// invocation in flight.
		go in.c.Stop(in.r.grace())
	})
	defer stop()
	url := fmt.Sprintf("http://127.0.0.1:%d/invoke", in.port)
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(callCtx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := in.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("POST %s: %w", url, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxResultBytes))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("POST %s: reading the answer: %w", url, err)
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 50 {
			wait := 100 * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			select {
			case <-time.After(wait):
				continue
			case <-callCtx.Done():
				return nil, fmt.Errorf("the warm watchdog stayed busy (429): %w", callCtx.Err())
			}
		}
		res, err := result.Decode(data)
		if err != nil || (!res.Success && res.Error == nil) {
			return nil, fmt.Errorf("POST %s answered %d with no result: %s", url, resp.StatusCode, excerpt(data))
		}
		return &res, nil
	}
}

func excerpt(b []byte) string {
	if len(b) > 300 {
		return fmt.Sprintf("%q...", b[:300])
	}
	return fmt.Sprintf("%q", b)
}

// configError is a start that cannot succeed until the function changes.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// ensureStarted starts the watchdog when it is not running and waits until
// its /health answers 200. Called with mu held.
func (in *Instance) ensureStarted(ctx context.Context) error {
	if in.c != nil && !in.c.Exited() {
		return nil
	}
	if in.c != nil {
		in.release()
	}
	fn := in.fn
	port, err := freePort()
	if err != nil {
		return err
	}
	set := map[string]string{
		"WARM_PORT":            strconv.Itoa(port),
		"TIMEOUT_MS":           strconv.FormatInt(fn.Timeout.Milliseconds(), 10),
		"WARM_IDLE_TIMEOUT_MS": "0",
	}
	if fn.Mode == "WARM" {
		set["EXECUTION_MODE"] = "WARM"
	} else {
		set["EXECUTION_MODE"] = fn.Mode
		set["WARM"] = "true"
	}
	defaults := map[string]string{"LOG_FORMAT": "text", "FUNCTION_LOG_FORMAT": "raw", "FUNCTION_NAME": fn.Name}
	var env []string
	cleanup := func() {}
	hostPort := port
	if in.r.Docker {
		delete(set, "EXECUTION_MODE")
		set["WARM"] = "true"
		set["WARM_PORT"] = "8080"
		e := merge(defaults, set)
		if fn.Spec != nil {
			// Registered through the API: deployed as upstream deploys it.
			e = merge(defaults, fn.Env, set, fn.DeployEnv)
			if in.r.CallbackBase != "" {
				e["CALLBACK_URL"] = in.r.CallbackBase
			}
		}
		if err := checkConfig(e, true); err != nil {
			return &configError{err}
		}
		env = envList(e)
	} else {
		if fn.Command == "" {
			return &configError{fmt.Errorf("function %s has no \"command\" to run on this machine; run it in its image (--image, serve --docker)", fn.Name)}
		}
		set["WATCHDOG_CMD"] = fn.Command
		extra, c, err := runtimeEnv(fn, fn.Env)
		if err != nil {
			return err
		}
		cleanup = c
		env = hostEnv(merge(defaults, extra), fn.Env, set)
		if err := checkConfig(envMap(env), false); err != nil {
			cleanup()
			return &configError{err}
		}
	}
	if in.r.Docker {
		ctr, err := newContainer(fn.Image, fmt.Sprintf("%s-%d", fn.Name, port))
		if err != nil {
			return &configError{err}
		}
		if err := ctr.configure(fn); err != nil {
			ctr.Remove()
			return &configError{err}
		}
		c, err := ctr.Run(env, in.log, true, hostPort)
		if err != nil {
			ctr.Remove()
			return fmt.Errorf("cannot start the warm watchdog in %s: %w", fn.Image, err)
		}
		in.c, in.ctr = c, ctr
	} else {
		c, err := startChild(in.r.Watchdog.Path, in.r.Watchdog.Args, fn.Dir, env, in.log)
		if err != nil {
			cleanup()
			return fmt.Errorf("cannot start the warm watchdog (%s): %w", in.r.Watchdog, err)
		}
		in.c = c
	}
	in.port, in.cleanup = hostPort, cleanup
	in.pid.Store(int64(in.c.Pid()))
	in.hostPort.Store(int64(hostPort))
	in.log.Printf("emulator: warm watchdog for %s started (pid %d, port %d)", fn.Name, in.c.Pid(), hostPort)
	go in.watch(in.c)
	if err := in.waitHealthy(ctx, readyTimeout(env)+in.r.grace()+5*time.Second); err != nil {
		in.c.Stop(in.r.grace())
		in.release()
		return err
	}
	return nil
}

// waitHealthy polls GET /health until 200, the watchdog exits, or limit.
func (in *Instance) waitHealthy(ctx context.Context, limit time.Duration) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/health", in.port)
	deadline := time.Now().Add(limit)
	last := "no answer yet"
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	for {
		resp, err := client.Get(url)
		if err == nil {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("status %d %s", resp.StatusCode, bytes.TrimSpace(data))
		} else {
			last = err.Error()
		}
		select {
		case <-in.c.Done():
			return fmt.Errorf("the warm watchdog exited (%s) before it was ready; see its log above", in.c.ExitString())
		case <-ctx.Done():
			return fmt.Errorf("stopped while the warm watchdog was starting: %w", context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the warm watchdog was not ready within %v (GET %s: %s)", limit.Round(time.Millisecond), url, last)
		}
	}
}

// watch restarts the watchdog if it dies on its own, with a backoff when it
// keeps dying.
func (in *Instance) watch(c *child) {
	<-c.Done()
	if c.Stopping() {
		return
	}
	in.mu.Lock()
	if in.stopped || in.c != c {
		in.mu.Unlock()
		return
	}
	in.pid.Store(0)
	if time.Since(c.started) > 10*time.Second {
		in.failures = 0
	}
	in.failures++
	wait := min(time.Duration(1<<min(in.failures-1, 5))*250*time.Millisecond, 8*time.Second)
	in.log.Printf("emulator: warm watchdog for %s exited (%s); restarting it in %v", in.fn.Name, c.ExitString(), wait)
	in.mu.Unlock()
	time.Sleep(wait)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped || in.c != c {
		return
	}
	in.restarts.Add(1)
	if err := in.ensureStarted(context.Background()); err != nil {
		in.log.Printf("emulator: cannot restart the warm watchdog for %s: %v (trying again at the next invocation)", in.fn.Name, err)
	}
}

// Start starts the watchdog now (rather than at the first invocation).
func (in *Instance) Start(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return errStopped
	}
	return in.ensureStarted(ctx)
}

// InstanceStatus is what GET /v1/functions/{name} shows of a warm watchdog.
type InstanceStatus struct {
	// Pid and Port are the watchdog's (0 when it is not running).
	Pid  int `json:"pid"`
	Port int `json:"port"`
	// RuntimePids are the watchdog's children (the warm runtime), on this machine.
	RuntimePids []int `json:"runtimePids"`
	// Health is the watchdog's GET /health answer, left out while it does
	// not answer (starting, or a container still coming up).
	Health   json.RawMessage `json:"health,omitempty"`
	Restarts int             `json:"restarts"`
}

// Status reads the watchdog's state without waiting for an invocation.
func (in *Instance) Status() InstanceStatus {
	st := InstanceStatus{Pid: in.Pid(), Port: int(in.hostPort.Load()), Restarts: in.Restarts(), RuntimePids: []int{}}
	if st.Pid == 0 {
		return st
	}
	if !in.r.Docker {
		st.RuntimePids = append(st.RuntimePids, proctree.Children(st.Pid)...)
	}
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/health", st.Port))
	if err == nil {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if json.Valid(data) {
			st.Health = data
		}
	}
	return st
}

// Restarts counts the watchdog's restarts (after it died, or by Restart).
func (in *Instance) Restarts() int {
	return int(in.restarts.Load())
}

// Restart stops the watchdog (after the invocation in flight) and starts a
// new one, so that changed files are live at the next invocation.
func (in *Instance) Restart(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return errStopped
	}
	if in.c != nil {
		in.c.Stop(in.r.grace())
		in.release()
	}
	in.restarts.Add(1)
	in.failures = 0
	return in.ensureStarted(ctx)
}

// Stop stops the watchdog for good.
func (in *Instance) Stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stopLocked()
}

func (in *Instance) stopLocked() {
	in.stopped = true
	if in.c != nil {
		if in.ctr != nil {
			in.ctr.Stop(in.r.grace())
		}
		in.c.Stop(in.r.grace())
		in.release()
	}
}

// release forgets a watchdog that has exited. Called with mu held.
func (in *Instance) release() {
	if in.ctr != nil {
		in.ctr.Remove()
		in.ctr = nil
	}
	in.cleanup()
	in.cleanup = func() {}
	in.c = nil
	in.pid.Store(0)
}
