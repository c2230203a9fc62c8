package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/config"
)

// maxEnvPayload is the largest payload passed in INVOCATION_PAYLOAD: Linux
// refuses an environment string over 128 KiB. Bigger payloads go through a
// watchdog in server mode (POST /invoke) instead.
const maxEnvPayload = 120 << 10

// Runner runs functions through watchdogs.
type Runner struct {
	Watchdog Watchdog
	// Docker runs functions in their images instead of on this machine.
	Docker bool
	// Log receives every log line (watchdog and function), prefixed.
	Log io.Writer
	// KillGrace is how long a watchdog gets to stop before SIGKILL.
	KillGrace time.Duration
	// CallbackBase is CALLBACK_URL for the warm watchdogs of functions
	// registered through the API ("": none).
	CallbackBase string
}

// Invocation is one call of a function.
type Invocation struct {
	ID      string
	TraceID string
	Payload json.RawMessage
	// Timeout overrides the function's timeout when not zero.
	Timeout time.Duration
	// Env is added to the function's environment (--env).
	Env map[string]string
}

func (inv Invocation) timeout(fn *Function) time.Duration {
	if inv.Timeout > 0 {
		return inv.Timeout
	}
	return fn.Timeout
}

func (r *Runner) grace() time.Duration {
	if r.KillGrace > 0 {
		return r.KillGrace
	}
	return 5 * time.Second
}

func (r *Runner) runtimeName() string {
	if r.Docker {
		return "docker"
	}
	return "host"
}

// prefix is the log prefix of one execution.
func (r *Runner) prefix(id string) *prefixWriter {
	return newPrefixWriter(r.Log, "["+id+"] ")
}

// RunOnce runs one invocation in a watchdog of its own: one-shot (the
// result comes back to recv, whose base URL for the watchdog is callbackBase),
// or, for warm functions and payloads too big for the environment, a
// watchdog in server mode that is stopped afterwards. Cancelling ctx stops
// the watchdog, which still reports what the function did.
func (r *Runner) RunOnce(ctx context.Context, fn *Function, inv Invocation, recv *receiver.Receiver, callbackBase string) Outcome {
	if fn.Warm || len(inv.Payload) > maxEnvPayload {
		return r.runInInstance(ctx, fn, inv)
	}
	out := Outcome{Report: Report{ExecutionID: inv.ID, Function: fn.Name, Runtime: r.runtimeName(), MaxRSSKB: -1}, Started: time.Now()}
	log := r.prefix(inv.ID)

	env, cleanup, err := r.oneShotEnv(fn, inv, callbackBase)
	defer cleanup()
	if err != nil {
		out.fail(StatusConfigError, "%v", err)
		return out
	}

	var peak atomic.Int64
	peak.Store(-1)
	var ctr *container
	before := func() {}
	if r.Docker {
		ctr, err = newContainer(fn.Image, inv.ID)
		if err != nil {
			out.fail(StatusConfigError, "%v", err)
			return out
		}
		if err := ctr.configure(fn); err != nil {
			ctr.Remove()
			out.fail(StatusConfigError, "%v", err)
			return out
		}
		defer ctr.Remove()
		before = func() { peak.Store(ctr.PeakMemoryKB()) }
	}
	results := recv.Expect(inv.ID, before)
	defer recv.Forget(inv.ID)

	var c *child
	out.Started = time.Now()
	if r.Docker {
		c, err = ctr.Run(env, log, false, 0)
	} else {
		c, err = startChild(r.Watchdog.Path, r.Watchdog.Args, fn.Dir, env, log)
	}
	if err != nil {
		out.fail(StatusWatchdogError, "cannot start the watchdog (%s): %v", r.Watchdog, err)
		return out
	}
	var peaks *peakSampler
	if !r.Docker {
		peaks = samplePeaks(c.Pid())
	}

	// The watchdog enforces the timeout; this bound only catches a watchdog
	// that hangs itself.
	limit := inv.timeout(fn) + readyTimeout(env) + r.grace() + 30*time.Second
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	interrupted := false
	select {
	case <-c.Done():
	case <-ctx.Done():
		interrupted = true
		log.Printf("emulator: stopping the watchdog (%v)", context.Cause(ctx))
		r.stop(c, ctr)
	case <-deadline.C:
		log.Printf("emulator: the watchdog did not finish within %v; stopping it", limit)
		r.stop(c, ctr)
	}
	<-c.Done()
	if !r.Docker {
		out.MaxRSSKB, out.MaxRSSMethod = peaks.Stop(), MethodSampled
	}
	select {
	case cb := <-results:
		res, _ := cb.Result() // the receiver took only results
		out.finish(&res, cb.At)
		if r.Docker {
			out.MaxRSSKB, out.MaxRSSMethod = peak.Load(), MethodCgroup
		}
		return out
	default:
	}
	out.Ended = time.Now()
	out.TotalMs = out.Ended.Sub(out.Started).Milliseconds()
	switch code := c.ExitCode(); {
	case code == 2 && !interrupted:
		out.fail(StatusConfigError, "the watchdog refused its configuration (exit status 2); see its message above")
	case r.Docker && code == 125:
		out.fail(StatusConfigError, "docker could not run the container (exit status 125); see its message above")
	default:
		out.fail(StatusWatchdogError, "the watchdog ended (%s) without reporting a result", c.ExitString())
	}
	return out
}

func (r *Runner) stop(c *child, ctr *container) {
	if ctr != nil {
		ctr.Stop(r.grace())
	}
	c.Stop(r.grace())
}

// runInInstance runs one invocation in a watchdog in server mode started for it.
func (r *Runner) runInInstance(ctx context.Context, fn *Function, inv Invocation) Outcome {
	inst := NewInstance(r, fn, r.prefix(inv.ID))
	o := inst.Invoke(ctx, inv)
	inst.Stop()
	o.Warm = fn.Warm
	return o
}

// oneShotEnv is a one-shot watchdog's environment, and what to remove after.
func (r *Runner) oneShotEnv(fn *Function, inv Invocation, callbackBase string) ([]string, func(), error) {
	cleanup := func() {}
	set := map[string]string{
		"EXECUTION_ID":       inv.ID,
		"CALLBACK_URL":       callbackBase,
		"INVOCATION_PAYLOAD": string(inv.Payload),
		"TIMEOUT_MS":         strconv.FormatInt(inv.timeout(fn).Milliseconds(), 10),
	}
	if inv.TraceID != "" {
		set["TRACE_ID"] = inv.TraceID
	}
	defaults := map[string]string{"LOG_FORMAT": "text", "FUNCTION_LOG_FORMAT": "raw", "FUNCTION_NAME": fn.Name}
	if r.Docker {
		// The image's own configuration (EXECUTION_MODE, WATCHDOG_CMD,
		// RUNTIME_URL...) stays; only the invocation and --env are passed.
		env := merge(defaults, inv.Env, set)
		return envList(env), cleanup, checkConfig(env, true)
	}
	if fn.Command == "" {
		return nil, cleanup, fmt.Errorf("function %s has no \"command\" to run on this machine; run it in its image with --image (or serve --docker)", fn.Name)
	}
	set["EXECUTION_MODE"] = fn.Protocol()
	set["WATCHDOG_CMD"] = fn.Command
	fnEnv := merge(fn.Env, inv.Env)
	extra, cleanup, err := runtimeEnv(fn, fnEnv)
	if err != nil {
		return nil, cleanup, err
	}
	env := hostEnv(merge(defaults, extra), fnEnv, set)
	return env, cleanup, checkConfig(envMap(env), false)
}

// runtimeEnv picks what must not clash between concurrent runs on one
// machine: a free port for an HTTP runtime, private files for FILE mode.
func runtimeEnv(fn *Function, fnEnv map[string]string) (map[string]string, func(), error) {
	extra := map[string]string{}
	cleanup := func() {}
	switch fn.Protocol() {
	case "HTTP":
		if _, ok := fnEnv["RUNTIME_URL"]; !ok {
			port, err := freePort()
			if err != nil {
				return nil, cleanup, err
			}
			extra["RUNTIME_URL"] = fmt.Sprintf("http://127.0.0.1:%d/invoke", port)
		}
	case "FILE":
		_, in := fnEnv["INPUT_FILE"]
		_, out := fnEnv["OUTPUT_FILE"]
		if !in || !out {
			dir, err := os.MkdirTemp("", "nanofaas-emulator-")
			if err != nil {
				return nil, cleanup, fmt.Errorf("cannot create a directory for FILE mode: %w", err)
			}
			cleanup = func() { _ = os.RemoveAll(dir) }
			extra["INPUT_FILE"] = filepath.Join(dir, "input.json")
			extra["OUTPUT_FILE"] = filepath.Join(dir, "output.json")
		}
	}
	return extra, cleanup, nil
}

// checkConfig validates a watchdog environment the way the watchdog will,
// so that a mistake is reported before anything starts. For an image only
// the variables given are checked, against the watchdog's defaults.
func checkConfig(env map[string]string, image bool) error {
	if image {
		probe := map[string]string{"EXECUTION_MODE": "STDIO", "WATCHDOG_CMD": "true"}
		for k, v := range env {
			probe[k] = v
		}
		env = probe
	}
	if _, err := config.New(envList(env)); err != nil {
		return fmt.Errorf("watchdog configuration error: %w", err)
	}
	return nil
}

func readyTimeout(env []string) time.Duration {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "READY_TIMEOUT_MS="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Millisecond
			}
		}
	}
	return 10 * time.Second
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
