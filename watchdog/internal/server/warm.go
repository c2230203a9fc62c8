package server

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/events"
	"nanofaas.dev/watchdog/internal/metrics"
	"nanofaas.dev/watchdog/internal/protocol"
	"nanofaas.dev/watchdog/proctree"
	"nanofaas.dev/watchdog/result"
)

// Restart backoff: the delay before restarting a runtime that exited or
// could not start doubles from backoffMin with each consecutive failure, up
// to backoffMax. A runtime that stayed up for stableAfter resets the count.
const (
	backoffMin  = 100 * time.Millisecond
	backoffMax  = 5 * time.Second
	stableAfter = 10 * time.Second
)

// groupPoll is how often the group of a runtime whose leader exited 0
// before it was ready (a daemonised server) is checked for life.
const groupPoll = 250 * time.Millisecond

func backoff(failures int) time.Duration {
	if failures < 1 {
		return 0
	}
	if failures > 10 {
		return backoffMax
	}
	return min(backoffMin<<(failures-1), backoffMax)
}

type warmState int

const (
	stateStarting warmState = iota
	stateReady
	stateRestarting
	stateStopped
)

var stateNames = [...]string{"starting", "ready", "restarting", "stopped"}

type restartRequest struct {
	rt     *protocol.HTTP
	reason string
}

// warm supervises the HTTP runtime of server mode: it starts it, keeps it
// running (restarting it with backoff when it exits), restarts it on request
// (after a timeout, after WARM_MAX_INVOCATIONS), and stops it on shutdown.
// Each (re)start uses a fresh protocol.HTTP.
type warm struct {
	cfg  config.Config
	deps protocol.Deps
	log  *slog.Logger
	m    *metrics.Metrics

	mu      sync.Mutex
	state   warmState
	rt      *protocol.HTTP
	failure *result.Result // the last failed start, until a start succeeds
	tries   int            // consecutive failed starts
	served  int            // invocations served by rt
	changed chan struct{}  // closed and replaced at every state change
	health  []byte         // /health body for the state
	healthy bool

	restart chan restartRequest
	done    chan struct{}
}

func newWarm(cfg config.Config, deps protocol.Deps, m *metrics.Metrics) *warm {
	w := &warm{
		cfg: cfg, deps: deps, log: deps.Log, m: m,
		changed: make(chan struct{}),
		restart: make(chan restartRequest, 1),
		done:    make(chan struct{}),
	}
	w.health = healthBody("starting", nil, 0)
	return w
}

// setLocked changes the state and wakes everyone waiting for a change.
func (w *warm) setLocked(st warmState) {
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

func (w *warm) set(st warmState) {
	w.mu.Lock()
	w.setLocked(st)
	w.mu.Unlock()
}

// healthState returns whether the runtime is ready and the /health body.
func (w *warm) healthState() (bool, []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.healthy, w.health
}

// run supervises the runtime until ctx is cancelled, then stops it.
func (w *warm) run(ctx context.Context) {
	defer close(w.done)
	defer w.set(stateStopped)
	failures := 0
	first := true
	for {
		rt := protocol.NewHTTP(w.cfg, w.deps)
		if !first {
			w.set(stateRestarting)
		}
		first = false
		begun := time.Now()
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
			w.log.Error("runtime did not start; invocations fail with its error until it does",
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
		w.log.Info(events.RuntimeReady, events.KeyPID, pid, events.KeyStartupMs, readyAt.Sub(begun).Milliseconds())

		reason := w.watch(ctx, rt)
		if reason == metrics.RestartExited {
			w.m.RuntimeRestarted(reason)
		}
		rt.Stop()
		if reason == "" {
			return
		}
		if reason != metrics.RestartExited {
			failures = 0
			w.log.Info("restarting runtime", "reason", reason, "pid", pid)
			continue
		}
		if time.Since(readyAt) >= stableAfter {
			failures = 0
		}
		failures++
		delay := backoff(failures)
		how := "its process group is gone"
		if exit, _, ok := rt.ExitStatus(); ok && !exit.Success() {
			how = exit.String()
		}
		w.log.Warn("runtime exited; restarting it", "pid", pid, "exit", how, "restart_in_ms", delay.Milliseconds())
		if !sleep(ctx, delay) {
			return
		}
	}
}

// watch waits until the runtime must be restarted and returns why, or ""
// when ctx is cancelled. It marks the runtime not ready before returning.
//
// A leader that exits 0 while its process group lives on has daemonised
// its server (it may do so before or after the runtime was found ready):
// from then on the group is watched instead of the leader.
func (w *warm) watch(ctx context.Context, rt *protocol.HTTP) string {
	exited := rt.Exited()
	var groupTick <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			w.markRestarting(rt)
			return ""
		case <-exited:
			exited = nil
			if exit, _, _ := rt.ExitStatus(); exit.Success() && proctree.GroupAlive(rt.Pid()) {
				w.log.Debug("runtime leader exited 0 and its process group lives on (a daemonised server); watching the group", "pid", rt.Pid())
				t := time.NewTicker(groupPoll)
				defer t.Stop()
				groupTick = t.C
				continue
			}
			w.markRestarting(rt)
			return metrics.RestartExited
		case <-groupTick:
			if !proctree.GroupAlive(rt.Pid()) {
				w.markRestarting(rt)
				return metrics.RestartExited
			}
		case req := <-w.restart:
			if req.rt == rt {
				return req.reason
			}
		}
	}
}

func (w *warm) markRestarting(rt *protocol.HTTP) {
	w.mu.Lock()
	if w.rt == rt && w.state == stateReady {
		w.setLocked(stateRestarting)
	}
	w.mu.Unlock()
}

// acquire returns the ready runtime, waiting up to wait while it starts or
// restarts. It fails at once with the start failure when the last start
// failed, so a broken runtime does not make every caller wait.
func (w *warm) acquire(wait time.Duration) (*protocol.HTTP, *result.Result) {
	var timer *time.Timer
	for {
		w.mu.Lock()
		st, rt, failure, changed := w.state, w.rt, w.failure, w.changed
		w.mu.Unlock()
		switch {
		case st == stateReady:
			return rt, nil
		case st == stateStopped:
			r := result.Failure(result.StartupError, "the runtime is stopped: the watchdog is shutting down")
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
			r := result.Failure(result.StartupError, "the runtime was not ready within the invocation's timeout of %dms (it is %s)",
				wait.Milliseconds(), stateNames[st])
			return nil, &r
		}
	}
}

// finished records an invocation that rt handled and restarts rt when it
// timed out (its state is unknown) or reached WARM_MAX_INVOCATIONS. The
// runtime is marked not ready at once, so the next invocation waits for
// the new one instead of reaching the old.
func (w *warm) finished(rt *protocol.HTTP, res *result.Result) {
	reason := ""
	w.mu.Lock()
	if w.rt == rt && w.state == stateReady {
		w.served++
		switch {
		case res.ErrorCode() == result.Timeout:
			reason = metrics.RestartTimeout
		case w.cfg.WarmMaxInvocations > 0 && w.served >= w.cfg.WarmMaxInvocations:
			reason = metrics.RestartMaxInvocations
		}
		if reason != "" {
			w.setLocked(stateRestarting)
			// Counted now, so that the answer to this invocation is
			// never ahead of the metrics.
			w.m.RuntimeRestarted(reason)
		}
	}
	w.mu.Unlock()
	if reason != "" {
		w.restart <- restartRequest{rt: rt, reason: reason}
	}
}

// wait waits until run has returned (the runtime is stopped).
func (w *warm) wait() { <-w.done }

// sleep waits d, or returns false when ctx is cancelled first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// healthBody renders a /health body.
func healthBody(status string, failure *result.Error, attempts int) []byte {
	b := appendJSONString([]byte(`{"status":`), status)
	if failure != nil {
		b = append(b, `,"error":`...)
		b = appendError(b, string(failure.Code), failure.Message)
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(attempts), 10)
	}
	return append(b, '}')
}
