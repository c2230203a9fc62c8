package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/result"
)

// warmInvocations is how many invocations the warm sequence sends.
const warmInvocations = 3

// warmCall is one POST /invoke to a WARM container.
type warmCall struct {
	id     string
	status int
	body   []byte
	result *result.Result
	err    error
	// callback is the watchdog's callback for the invocation (nil: none
	// came); others are the callbacks that were not the watchdog's.
	callback *receiver.Call
	others   []receiver.Call
}

// judgeCallbacks sorts the invocation's callbacks.
func (c *warmCall) judgeCallbacks(calls []receiver.Call) {
	c.callback, c.others = judgeCalls(c.id, calls)
}

// describe summarises a call for a reason.
func (c *warmCall) describe() string {
	switch {
	case c == nil:
		return "not sent"
	case c.err != nil:
		return c.err.Error()
	case c.result != nil && c.result.Error != nil:
		return fmt.Sprintf("HTTP %d %s: %s", c.status, c.result.Error.Code, excerpt(c.result.Error.Message, 600))
	}
	return fmt.Sprintf("HTTP %d: %s", c.status, oneLine(string(c.body), 200))
}

func (c *warmCall) ok() bool {
	return c != nil && c.err == nil && c.status == http.StatusOK && c.result != nil && c.result.Success
}

// warmRun is what a WARM container showed over a sequence of invocations.
type warmRun struct {
	err error // the container could not be run or never became ready
	// served: /health on WARM_PORT answered HTTP (any status); ready: 200.
	served     bool
	ready      bool
	readyAfter time.Duration
	lastHealth string
	calls      []*warmCall
	bad        *warmCall
	afterBad   *warmCall
	// procs are the container's processes once ready, after the sequence
	// and after the bad payload's invocation and the next one.
	procsReady, procsSeq, procsBad *snapshot
	stopTook                       time.Duration
	stopErr                        error
	exitCode                       int
	logs                           []byte
}

// all returns every invocation sent, in order.
func (w *warmRun) all() []*warmCall {
	out := append([]*warmCall{}, w.calls...)
	for _, c := range []*warmCall{w.bad, w.afterBad} {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// runWarm starts the image in server mode, with CALLBACK_URL set as the
// control plane sets it, and runs the sequence: /health until ready, the
// payload warmInvocations times, the bad payload and the payload again,
// then docker stop. The callbacks of every invocation are collected once
// the container has exited.
func (s *session) runWarm(ctx context.Context) *warmRun {
	r := &warmRun{}
	port := s.warmPort()
	env := map[string]string{
		"CALLBACK_URL":         ContainerURL(s.recv),
		"TIMEOUT_MS":           strconv.FormatInt(s.o.Timeout.Milliseconds(), 10),
		"KILL_GRACE_MS":        strconv.FormatInt(measureGrace.Milliseconds(), 10),
		"WARM_IDLE_TIMEOUT_MS": "0",
	}
	if imageMode(s.img.Env) != "WARM" {
		env["WARM"] = "true"
	}
	c, err := s.d.Start(ctx, ContainerSpec{Image: s.o.Image, Env: env, Expose: []string{port + "/tcp"}})
	if err != nil {
		r.err = err
		return r
	}
	defer c.Remove()
	collect := func() {
		r.logs, _ = c.Logs(context.WithoutCancel(ctx))
		for _, call := range r.all() {
			call.judgeCallbacks(s.recv.For(call.id))
		}
	}
	base, err := c.Endpoint(ctx, port+"/tcp")
	if err != nil {
		r.err = err
		collect()
		return r
	}
	client := &http.Client{Timeout: s.o.Timeout + 15*time.Second}

	// Ready: /health answers 200.
	bound := s.readyTimeout() + 15*time.Second
	deadline := time.Now().Add(bound)
	probe := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := probe.Get(base + "/health")
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			r.served = true
			r.lastHealth = fmt.Sprintf("HTTP %d %s", resp.StatusCode, oneLine(string(b), 200))
			if resp.StatusCode == http.StatusOK {
				r.ready = true
				r.readyAfter = time.Since(c.Started)
				break
			}
		} else {
			r.lastHealth = err.Error()
		}
		if st, err := c.State(ctx); err == nil && !st.Running {
			r.exitCode = st.ExitCode
			r.err = fmt.Errorf("the container exited with code %d before /health answered 200", st.ExitCode)
			collect()
			return r
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.err = fmt.Errorf("/health on WARM_PORT %s did not answer 200 within %v (last: %s)", port, bound, r.lastHealth)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	if r.ready {
		r.procsReady = takeSnapshot(ctx, c)
		for i := 0; i < warmInvocations && ctx.Err() == nil; i++ {
			r.calls = append(r.calls, s.invokeWarm(ctx, client, base, s.o.Payload, "warm"))
		}
		r.procsSeq = takeSnapshot(ctx, c)
		if s.o.BadPayload != nil && ctx.Err() == nil {
			r.bad = s.invokeWarm(ctx, client, base, s.o.BadPayload, "warm-bad")
			r.afterBad = s.invokeWarm(ctx, client, base, s.o.Payload, "warm-after-bad")
			r.procsBad = takeSnapshot(ctx, c)
		}
	}

	// docker stop: SIGTERM to the watchdog, which stops the runtime.
	r.stopTook, r.stopErr = c.Stop(context.WithoutCancel(ctx), 10*time.Second)
	if code, err := c.WaitExit(context.WithoutCancel(ctx), 5*time.Second); err == nil {
		r.exitCode = code
	} else if r.stopErr == nil {
		r.stopErr = err
	}
	collect()
	return r
}

// invokeWarm sends one envelope to POST /invoke.
func (s *session) invokeWarm(ctx context.Context, client *http.Client, base string, payload json.RawMessage, kind string) *warmCall {
	call := &warmCall{id: newID(kind)}
	env := map[string]any{
		"execution_id": call.id,
		"trace_id":     "trace-" + call.id,
		"payload":      payload,
		"timeout_ms":   s.o.Timeout.Milliseconds(),
	}
	body, _ := json.Marshal(env)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/invoke", bytes.NewReader(body))
	if err != nil {
		call.err = err
		return call
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		call.err = fmt.Errorf("POST /invoke: %v", err)
		return call
	}
	defer resp.Body.Close()
	call.status = resp.StatusCode
	call.body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		call.err = fmt.Errorf("POST /invoke: reading the answer: %v", err)
		return call
	}
	if res, err := ValidateResult(call.body); err == nil {
		call.result = &res
	} else {
		call.err = fmt.Errorf("POST /invoke answered HTTP %d with a malformed result: %v", call.status, err)
	}
	return call
}
