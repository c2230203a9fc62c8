package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/metrics"
	"nanofaas.dev/watchdog/internal/protocol"
	"nanofaas.dev/watchdog/result"
)

// linesWarm supervises a STDIO function kept warm with STDIO_PROTOCOL=lines,
// as warm supervises the HTTP runtime: it starts the process, marks it
// ready (at once: a lines function needs no probe), restarts it with
// backoff when it exits or breaks the protocol, restarts it at once after a
// timeout or WARM_MAX_INVOCATIONS, and stops it on shutdown. Each
// (re)start uses a fresh protocol.Lines. One invocation at a time.
type linesWarm struct {
	cfg  config.Config
	deps protocol.Deps
	log  *slog.Logger
	m    *metrics.Metrics

	mu      sync.Mutex
	state   warmState
	rt      *protocol.Lines
	failure *result.Result  // the last failed start, until a start succeeds
	tries   int             // consecutive failed starts
	served  int             // invocations served by rt
	inUse   bool            // an invocation holds rt (between acquire and finished)
	decided *protocol.Lines // finished has asked for rt's restart
	changed chan struct{}   // closed and replaced at every state change
	health  []byte
	healthy bool

	restart chan linesRestart
	done    chan struct{}
}

type linesRestart struct {
	rt     *protocol.Lines
	reason string
	// backoff: the restart counts as a failure (a crash, a protocol error).
	backoff bool
}

func newLinesWarm(cfg config.Config, deps protocol.Deps, m *metrics.Metrics) *linesWarm {
	return &linesWarm{
		cfg: cfg, deps: deps, log: deps.Log, m: m,
		changed: make(chan struct{}),
		restart: make(chan linesRestart, 1),
		done:    make(chan struct{}),
		health:  healthBody("starting", nil, 0),
	}
}

func (w *linesWarm) setLocked(st warmState) {
	w.state = st
	w.healthy = st == stateReady
	switch {
	case st == stateReady:
		w.health = healthBody("ready", nil, 0)
	case w.failure != nil && st != stateStopped:
		w.health = healthBody("failed", w.failure.Error, w.tries)
	default:
		w.health = healthBody(stateNames[st], nil, 0)
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *linesWarm) set(st warmState) {
	w.mu.Lock()
	w.setLocked(st)
	w.mu.Unlock()
}

// healthState returns whether the function is ready and the /health body.
func (w *linesWarm) healthState() (bool, []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.healthy, w.health
}

// run supervises the function until ctx is cancelled, then stops it.
func (w *linesWarm) run(ctx context.Context) {
	defer close(w.done)
	defer w.set(stateStopped)
	failures := 0
	first := true
	for {
		rt := protocol.NewLines(w.cfg, w.deps)
		if !first {
			w.set(stateRestarting)
		}
		first = false
		failed := rt.Start(ctx)
		if ctx.Err() != nil {
			rt.Stop()
			return
		}
		if failed != nil {
			failures++
			delay := backoff(failures)
			w.mu.Lock()
			w.failure, w.tries = failed, failures
			w.setLocked(stateRestarting)
			w.mu.Unlock()
			w.log.Error("function did not start; invocations fail with its error until it does",
				"error_code", string(failed.Error.Code), "message", failed.Error.Message,
				"attempt", failures, "retry_in_ms", delay.Milliseconds())
			if !sleep(ctx, delay) {
				return
			}
			w.m.RuntimeRestarted(metrics.RestartStartFailed)
			continue
		}
		readyAt := time.Now()
		pid := rt.Pid()
		w.mu.Lock()
		w.rt, w.failure, w.tries, w.served = rt, nil, 0, 0
		w.setLocked(stateReady)
		w.mu.Unlock()
		w.log.Info("function ready (STDIO_PROTOCOL=lines)", "pid", pid)

		req, stopped := w.watch(ctx, rt)
		rt.Stop()
		if stopped {
			return
		}
		if !req.backoff {
			failures = 0
			w.log.Info("restarting function", "reason", req.reason, "pid", pid)
			continue
		}
		if time.Since(readyAt) >= stableAfter {
			failures = 0
		}
		failures++
		delay := backoff(failures)
		w.log.Error("function broke; restarting it", "error_code", string(result.FunctionError), "reason", req.reason,
			"pid", pid, "why", rt.Why(), "restart_in_ms", delay.Milliseconds())
		if !sleep(ctx, delay) {
			return
		}
	}
}

// watch waits until the function must be restarted and says why, or
// reports stopped when ctx is cancelled. While an invocation holds the
// function, its end decides (finished); otherwise the function breaking
// (it exited, or wrote on its result channel outside an invocation) does.
func (w *linesWarm) watch(ctx context.Context, rt *protocol.Lines) (linesRestart, bool) {
	broken := rt.Done()
	for {
		select {
		case <-ctx.Done():
			w.markRestarting(rt)
			return linesRestart{}, true
		case <-broken:
			w.mu.Lock()
			if w.rt == rt && (w.inUse || w.decided == rt) {
				// finished says (or has said) what to do.
				w.mu.Unlock()
				broken = nil
				continue
			}
			if w.rt == rt && w.state == stateReady {
				w.setLocked(stateRestarting)
			}
			w.mu.Unlock()
			reason := metrics.RestartProtocolError
			if _, exited := rt.ExitStatus(); exited {
				reason = metrics.RestartExited
			}
			w.m.RuntimeRestarted(reason)
			return linesRestart{rt: rt, reason: reason, backoff: true}, false
		case req := <-w.restart:
			if req.rt == rt {
				return req, false
			}
		}
	}
}

func (w *linesWarm) markRestarting(rt *protocol.Lines) {
	w.mu.Lock()
	if w.rt == rt && w.state == stateReady {
		w.setLocked(stateRestarting)
	}
	w.mu.Unlock()
}

// acquire returns the ready function, waiting up to wait while it starts
// or restarts; it fails at once with the start failure when the last start
// failed. The caller must call finished.
func (w *linesWarm) acquire(wait time.Duration) (*protocol.Lines, *result.Result) {
	var timer *time.Timer
	for {
		w.mu.Lock()
		st, rt, failure, changed := w.state, w.rt, w.failure, w.changed
		if st == stateReady {
			select {
			case <-rt.Done():
				// Broken between invocations: the restart is on its way.
				w.setLocked(stateRestarting)
				changed = w.changed
				st = stateRestarting
			default:
				w.inUse = true
				w.mu.Unlock()
				return rt, nil
			}
		}
		w.mu.Unlock()
		switch {
		case st == stateStopped:
			r := result.Failure(result.StartupError, "the function is stopped: the watchdog is shutting down")
			return nil, &r
		case failure != nil:
			r := *failure
			return nil, &r
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-changed:
		case <-timer.C:
			r := result.Failure(result.StartupError, "the function was not ready within the invocation's timeout of %dms (it is %s)",
				wait.Milliseconds(), stateNames[st])
			return nil, &r
		}
	}
}

// finished records an invocation that rt handled and restarts rt when it
// timed out, broke (crashed, or broke the protocol) or reached
// WARM_MAX_INVOCATIONS. The function is marked not ready at once, so the
// next invocation waits for the new one.
func (w *linesWarm) finished(rt *protocol.Lines, res *result.Result) {
	var req linesRestart
	broken := false
	select {
	case <-rt.Done():
		broken = true
	default:
	}
	w.mu.Lock()
	w.inUse = false
	if w.rt == rt && w.state == stateReady {
		w.served++
		switch {
		case res.ErrorCode() == result.Timeout:
			req = linesRestart{rt: rt, reason: metrics.RestartTimeout}
		case broken:
			req = linesRestart{rt: rt, reason: metrics.RestartProtocolError, backoff: true}
			if _, exited := rt.ExitStatus(); exited {
				req.reason = metrics.RestartExited
			}
		case w.cfg.WarmMaxInvocations > 0 && w.served >= w.cfg.WarmMaxInvocations:
			req = linesRestart{rt: rt, reason: metrics.RestartMaxInvocations}
		}
		if req.reason != "" {
			w.decided = rt
			w.setLocked(stateRestarting)
			// Counted now, so that the answer to this invocation is
			// never ahead of the metrics.
			w.m.RuntimeRestarted(req.reason)
		}
	}
	w.mu.Unlock()
	if req.reason != "" {
		w.restart <- req
	}
}

// wait waits until run has returned (the function is stopped).
func (w *linesWarm) wait() { <-w.done }
