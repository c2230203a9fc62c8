package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

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
}

// describe summarises a call for a reason.
func (c *warmCall) describe() string {
	switch {
	case c == nil:
		return "not sent"
	case c.err != nil:
		return c.err.Error()
	case c.result != nil && c.result.Error != nil:
		return fmt.Sprintf("HTTP %d %s: %s", c.status, c.result.Error.Code, oneLine(c.result.Error.Message, 300))
	}
	return fmt.Sprintf("HTTP %d: %s", c.status, oneLine(string(c.body), 200))
}

func (c *warmCall) ok() bool {
	return c != nil && c.err == nil && c.status == http.StatusOK && c.result != nil && c.result.Success
}

// warmRun is what a WARM container showed over a sequence of invocations.
type warmRun struct {
	err        error // the container could not be run or never became ready
	ready      bool
	readyAfter time.Duration
	lastHealth string
	calls      []*warmCall
	bad        *warmCall
	afterBad   *warmCall
	// restarts are watchdog_runtime_restarts_total by label set, scraped
	// once ready, after the sequence and after the bad payload (nil when
	// /metrics did not have them).
	restartsReady, restartsSeq, restartsBad map[string]float64
	stopTook                                time.Duration
	stopErr                                 error
	exitCode                                int
	logs                                    []byte
	events                                  []logEvent
}

// runWarm starts the image in server mode and runs the sequence: /health
// until ready, the payload warmInvocations times, the bad payload and the
// payload again, /metrics, then docker stop.
func (s *session) runWarm(ctx context.Context) *warmRun {
	r := &warmRun{}
	port := strings.TrimSpace(s.img.Env["WARM_PORT"])
	if port == "" {
		port = "8080"
	}
	env := map[string]string{
		"TIMEOUT_MS":           strconv.FormatInt(s.o.Timeout.Milliseconds(), 10),
		"KILL_GRACE_MS":        strconv.FormatInt(measureGrace.Milliseconds(), 10),
		"LOG_LEVEL":            "debug",
		"LOG_FORMAT":           "json",
		"WARM_IDLE_TIMEOUT_MS": "0",
	}
	c, err := s.d.Start(ctx, ContainerSpec{Image: s.o.Image, Env: env, Expose: []string{port + "/tcp"}})
	if err != nil {
		r.err = err
		return r
	}
	defer c.Remove()
	collect := func() {
		r.logs, _ = c.Logs(context.WithoutCancel(ctx))
		r.events = parseLog(r.logs)
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
		r.restartsReady = scrapeRestarts(client, base)
		for i := 0; i < warmInvocations && ctx.Err() == nil; i++ {
			r.calls = append(r.calls, s.invokeWarm(ctx, client, base, s.o.Payload, "warm"))
		}
		r.restartsSeq = scrapeRestarts(client, base)
		if s.o.BadPayload != nil && ctx.Err() == nil {
			r.bad = s.invokeWarm(ctx, client, base, s.o.BadPayload, "warm-bad")
			r.afterBad = s.invokeWarm(ctx, client, base, s.o.Payload, "warm-after-bad")
			r.restartsBad = scrapeRestarts(client, base)
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
	if res, err := result.Decode(call.body); err == nil {
		call.result = &res
	} else {
		call.err = fmt.Errorf("POST /invoke answered HTTP %d with a body that is not a result: %s", call.status, oneLine(string(call.body), 200))
	}
	return call
}

// scrapeRestarts reads watchdog_runtime_restarts_total from /metrics, by
// label set; nil when /metrics does not answer or does not have it.
func scrapeRestarts(client *http.Client, base string) map[string]float64 {
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var out map[string]float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "watchdog_runtime_restarts_total") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			if out == nil {
				out = map[string]float64{}
			}
			out[strings.TrimPrefix(line[:i], "watchdog_runtime_restarts_total")] = v
		}
	}
	return out
}

// restartsBetween says how many restarts happened between two scrapes, and
// for which label sets; n is -1 when either scrape is missing.
func restartsBetween(before, after map[string]float64) (n float64, which string) {
	if before == nil || after == nil {
		return -1, ""
	}
	var parts []string
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			n += d
			parts = append(parts, fmt.Sprintf("%s +%.0f", k, d))
		}
	}
	return n, strings.Join(parts, ", ")
}
