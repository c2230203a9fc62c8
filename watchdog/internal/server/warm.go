package server

import (
	"context"
	"fmt"
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
	g      *generation
	reason string
}

// generation is one started runtime process and the invocations it runs.
type generation struct {
	rt protocol.Process
	// ctx is the parent of its invocations' contexts: cancelled, with a
	// protocol.Interruption saying why, when the runtime is restarted
	// under them.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// Counted under warm.mu.
	started  int    // invocations handed to rt
	inFlight int    // of them, not finished yet
	retiring string // restart reason decided; rt takes no more invocations
	asked    bool   // the restart was requested
}

// warm supervises the warm runtime of server mode (a protocol.Process):
// it starts it, keeps it running (restarting it with backoff when it
// exits), restarts it on request (after a timeout, after
// WARM_MAX_INVOCATIONS), and stops it on shutdown. Each (re)start uses a
// fresh Process from newProcess; it may run up to WARM_CONCURRENCY
// invocations at once.
type warm struct {
	cfg        config.Config
	deps       protocol.Deps
	log        *slog.Logger
	m          *metrics.Metrics
	newProcess func() protocol.Process

	mu      sync.Mutex
	state   warmState
	cur     *generation    // the runtime started last, nil before
	failure *result.Result // the last failed start, until a start succeeds
	tries   int            // consecutive failed starts
	changed chan struct{}  // closed and replaced at every state change
	health  []byte         // /health body for the state
	healthy bool

	restart chan restartRequest
	done    chan struct{}
}

func newWarm(cfg config.Config, deps protocol.Deps, m *metrics.Metrics, newProcess func() protocol.Process) *warm {
	w := &warm{
		cfg: cfg, deps: deps, log: deps.Log, m: m, newProcess: newProcess,
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
		rt := w.newProcess()
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
		g := &generation{rt: rt}
		g.ctx, g.cancel = context.WithCancelCause(context.Background())
		w.mu.Lock()
		w.cur, w.failure, w.tries = g, nil, 0
		w.setLocked(stateReady)
		w.mu.Unlock()
		w.log.Info(events.RuntimeReady, events.KeyPID, pid, events.KeyStartupMs, readyAt.Sub(begun).Milliseconds())

		reason := w.watch(ctx, g)
		broke := reason == metrics.RestartExited || reason == metrics.RestartProtocolError
		if broke {
			w.m.RuntimeRestarted(reason)
		}
		rt.Stop()
		g.cancel(endCause(rt, reason))
		if reason == "" {
			return
		}
		if !broke {
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
		if why := protocolError(rt); why != "" {
			w.log.Warn("runtime broke its protocol; restarting it", "pid", pid, "why", why, "exit", how, "restart_in_ms", delay.Milliseconds())
		} else {
			w.log.Warn("runtime exited; restarting it", "pid", pid, "exit", how, "restart_in_ms", delay.Milliseconds())
		}
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
func (w *warm) watch(ctx context.Context, g *generation) string {
	rt := g.rt
	exited := rt.Exited()
	var groupTick <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			w.markRestarting(g)
			return ""
		case <-exited:
			exited = nil
			if protocolError(rt) != "" {
				w.markRestarting(g)
				return metrics.RestartProtocolError
			}
			if exit, _, _ := rt.ExitStatus(); rt.Daemonising() && exit.Success() && proctree.GroupAlive(rt.Pid()) {
				w.log.Debug("runtime leader exited 0 and its process group lives on (a daemonised server); watching the group", "pid", rt.Pid())
				t := time.NewTicker(groupPoll)
				defer t.Stop()
				groupTick = t.C
				continue
			}
			w.markRestarting(g)
			return metrics.RestartExited
		case <-groupTick:
			if !proctree.GroupAlive(rt.Pid()) {
				w.markRestarting(g)
				return metrics.RestartExited
			}
		case req := <-w.restart:
			if req.g == g {
				return req.reason
			}
		}
	}
}

// markRestarting takes g out of service: its process exited, or the
// watchdog is shutting down.
func (w *warm) markRestarting(g *generation) {
	w.mu.Lock()
	if g.retiring == "" {
		g.retiring = metrics.RestartExited
	}
	if w.cur == g && w.state == stateReady {
		w.setLocked(stateRestarting)
	}
	w.mu.Unlock()
}

// acquire returns the ready runtime and counts an invocation on it,
// waiting up to wait while it starts or restarts. It fails at once with
// the start failure when the last start failed, so a broken runtime does
// not make every caller wait. The caller must call finished.
func (w *warm) acquire(wait time.Duration) (*generation, *result.Result) {
	var timer *time.Timer
	for {
		w.mu.Lock()
		st, g, failure, changed := w.state, w.cur, w.failure, w.changed
		if st == stateReady && g.retiring == "" {
			g.started++
			g.inFlight++
			if max := w.cfg.WarmMaxInvocations; max > 0 && g.started >= max {
				// The last one this runtime takes: no other invocation
				// reaches it; it restarts when the ones in flight end.
				g.retiring = metrics.RestartMaxInvocations
				w.setLocked(stateRestarting)
			}
			w.mu.Unlock()
			return g, nil
		}
		w.mu.Unlock()
		switch {
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

// finished records the end of an invocation (execution id) that g ran.
//
// A timeout leaves the runtime in an unknown state: it is restarted at
// once, and the other invocations in flight on it end first, each with a
// FUNCTION_ERROR that says so (never silently killed). After
// WARM_MAX_INVOCATIONS the runtime restarts once the last of its
// invocations ends. A restart is counted in the metrics before the answer
// of the invocation that caused it goes out.
func (w *warm) finished(g *generation, res *result.Result, executionID string) {
	w.mu.Lock()
	g.inFlight--
	// A process that exited (or broke its protocol) under this invocation
	// takes no other: out of service now, before the next call is let in;
	// watch restarts it. (A daemonising runtime's leader exits 0 and its
	// server lives on: watch decides about those.)
	if !g.rt.Daemonising() {
		select {
		case <-g.rt.Exited():
			if w.cur == g && w.state == stateReady {
				w.setLocked(stateRestarting)
			}
		default:
		}
	}
	// A timeout also overrides a WARM_MAX_INVOCATIONS retirement still
	// waiting for the calls in flight: the runtime's state is unknown now.
	if res.ErrorCode() == result.Timeout && (g.retiring == "" || g.retiring == metrics.RestartMaxInvocations && !g.asked) {
		g.retiring = metrics.RestartTimeout
		if g.inFlight > 0 {
			g.cancel(&protocol.Interruption{Message: fmt.Sprintf(
				"the runtime was restarted while this invocation was in flight: execution %s, running on the same runtime, exceeded its timeout of %dms and left the runtime in an unknown state; retry this invocation",
				quoteID(executionID), res.DurationMs)})
		}
		if w.cur == g && w.state == stateReady {
			w.setLocked(stateRestarting)
		}
	}
	reason := ""
	if !g.asked && (g.retiring == metrics.RestartTimeout || g.retiring == metrics.RestartMaxInvocations && g.inFlight == 0) {
		g.asked = true
		reason = g.retiring
		w.m.RuntimeRestarted(reason)
	}
	w.mu.Unlock()
	if reason != "" {
		select {
		case w.restart <- restartRequest{g: g, reason: reason}:
		case <-w.done:
		}
	}
}

// protocolError says why rt broke its protocol ("" when it did not, or
// cannot: only a runtime that speaks a protocol of its own, as a lines
// function does, reports it).
func protocolError(rt protocol.Process) string {
	if p, ok := rt.(interface{ ProtocolError() string }); ok {
		return p.ProtocolError()
	}
	return ""
}

// endCause is why the invocations still in flight on a runtime that was
// stopped for reason ended (a timeout interrupted them earlier, with its
// own cause).
func endCause(rt protocol.Process, reason string) error {
	if reason == metrics.RestartExited {
		how := "its process group gone"
		exit, tail, ok := rt.ExitStatus()
		if ok && !exit.Success() {
			how = exit.String()
		}
		in := &protocol.Interruption{Message: "runtime exited with " + how + " during the invocation", StderrTail: tail}
		if ok {
			in.Exit = &exit
		}
		return in
	}
	if reason == "" {
		return &protocol.Interruption{Message: "invocation interrupted because the watchdog is shutting down"}
	}
	return &protocol.Interruption{Message: "invocation interrupted because the runtime was stopped (" + reason + ")"}
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
