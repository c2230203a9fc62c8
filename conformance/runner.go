package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/result"
)

// DefaultPayload is the payload of `conformance run` without --payload.
const DefaultPayload = `{"input":"hello"}`

// stopBudget is how quickly a runtime must exit after SIGTERM (RT-SIG-001):
// the watchdog's default KILL_GRACE_MS.
const stopBudget = 2 * time.Second

// measureGrace is the KILL_GRACE_MS the runner gives the watchdog where it
// measures shutdown, well above stopBudget, so a runtime that ignores SIGTERM
// shows as one that needed the whole grace.
const measureGrace = 6 * time.Second

// quickGrace is the KILL_GRACE_MS of the other runs, so that a runtime that
// ignores SIGTERM does not slow down the whole suite.
const quickGrace = 1 * time.Second

// Options say what to check.
type Options struct {
	// Image is the runtime image; it must be in the local Docker engine.
	Image string
	// Mode is HTTP, STDIO, FILE or WARM; empty means the image's own.
	Mode string
	// Payload is the invocation's payload (DefaultPayload when nil).
	Payload json.RawMessage
	// Expect, when not nil, is the output Payload must give (RT-FN-001).
	Expect json.RawMessage
	// BadPayload, when not nil, is a payload the function must refuse (RT-ERR-*).
	BadPayload json.RawMessage
	// Level is the weakest level checked (default SHOULD: MUST and SHOULD).
	Level Level
	// Timeout is each invocation's TIMEOUT_MS (default 30s).
	Timeout time.Duration
	// Parallel is how many containers run at once (default 2).
	Parallel int
	// Progress receives one line per step while containers run (nil: quiet).
	Progress io.Writer
	// Docker is the engine (nil: connect to the default one).
	Docker *Docker
}

// Status is the outcome of one requirement.
type Status string

// The outcomes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Result is the outcome of one requirement against an image.
type Result struct {
	ID       string        `json:"id"`
	Level    Level         `json:"level"`
	Group    string        `json:"group"`
	Title    string        `json:"title"`
	Status   Status        `json:"status"`
	Duration time.Duration `json:"-"`
	Reason   string        `json:"reason"`
}

// Report is the outcome of a run.
type Report struct {
	SpecVersion string        `json:"spec_version"`
	Image       string        `json:"image"`
	Mode        string        `json:"mode"`
	Level       Level         `json:"level"`
	Started     time.Time     `json:"started"`
	Duration    time.Duration `json:"-"`
	Results     []Result      `json:"results"`
	spec        *Spec
}

// Result returns the result for id.
func (r *Report) Result(id string) (Result, bool) {
	for _, res := range r.Results {
		if res.ID == id {
			return res, true
		}
	}
	return Result{}, false
}

// Counts returns how many requirements passed, failed and were skipped,
// and how many of the failures are MUST requirements.
func (r *Report) Counts() (passed, failed, skipped, mustFailed int) {
	for _, res := range r.Results {
		switch res.Status {
		case Pass:
			passed++
		case Fail:
			failed++
			if res.Level == Must {
				mustFailed++
			}
		case Skip:
			skipped++
		}
	}
	return
}

// Conforms reports whether no MUST requirement failed.
func (r *Report) Conforms() bool {
	_, _, _, mustFailed := r.Counts()
	return mustFailed == 0
}

// verdict is what a check returns.
type verdict struct {
	status Status
	reason string
	// took is the time of the container run(s) the verdict rests on.
	took time.Duration
}

func pass(format string, a ...any) verdict {
	return verdict{status: Pass, reason: fmt.Sprintf(format, a...)}
}
func fail(format string, a ...any) verdict {
	return verdict{status: Fail, reason: fmt.Sprintf(format, a...)}
}
func skip(format string, a ...any) verdict {
	return verdict{status: Skip, reason: fmt.Sprintf(format, a...)}
}

// check is how the runner checks one RT requirement.
type check struct {
	// needs returns the probes the check uses in a mode.
	needs func(s *session) []probe
	eval  func(s *session) verdict
}

// CheckedIDs returns the ids of the requirements `conformance run` checks.
func CheckedIDs() []string {
	var ids []string
	for id := range checks {
		ids = append(ids, id)
	}
	return ids
}

// Run checks the image against the RT requirements of the embedded spec.
func Run(ctx context.Context, o Options) (*Report, error) {
	return runSpec(ctx, LoadSpec(), o)
}

func runSpec(ctx context.Context, spec *Spec, o Options) (*Report, error) {
	if o.Image == "" {
		return nil, errors.New("no image given")
	}
	if o.Payload == nil {
		o.Payload = json.RawMessage(DefaultPayload)
	}
	for name, doc := range map[string]json.RawMessage{"payload": o.Payload, "expected output": o.Expect, "bad payload": o.BadPayload} {
		if doc != nil && !json.Valid(doc) {
			return nil, fmt.Errorf("the %s is not one JSON document: %.100q", name, doc)
		}
	}
	if o.Level == "" {
		o.Level = Should
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Parallel <= 0 {
		o.Parallel = 2
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	started := time.Now()
	d := o.Docker
	if d == nil {
		var err error
		d, err = NewDocker(ctx)
		if err != nil {
			return nil, err
		}
		defer d.Close()
	}
	img, err := d.Image(ctx, o.Image)
	if err != nil {
		return nil, err
	}
	mode := strings.ToUpper(o.Mode)
	if mode == "" {
		mode = imageMode(img.Env)
	}
	if !isMode(mode) {
		return nil, fmt.Errorf("mode %q: want HTTP, STDIO, FILE or WARM", o.Mode)
	}
	recv, err := StartReceiver(nil)
	if err != nil {
		return nil, err
	}
	defer recv.Close()

	s := &session{o: o, mode: mode, img: img, d: d, recv: recv, probes: map[probe]*probeRun{}, sem: make(chan struct{}, o.Parallel)}
	rep := &Report{SpecVersion: spec.Version, Image: o.Image, Mode: mode, Level: o.Level, Started: started, spec: spec}

	// Decide what is checked, start every container run that needs, in
	// parallel, then judge each requirement in the spec's order.
	type planned struct {
		req Requirement
		chk *check
	}
	var plan []planned
	for _, req := range spec.Requirements {
		if req.Side != "RT" || !req.AppliesTo(mode) {
			continue
		}
		var chk *check
		if c, ok := checks[req.ID]; ok && o.Level.Includes(req.Level) {
			chk = &c
		}
		plan = append(plan, planned{req, chk})
		if chk != nil {
			for _, p := range chk.needs(s) {
				s.want(p)
			}
		}
	}
	s.progress("%s (%s): %d requirements, %d container runs", o.Image, mode, len(plan), len(s.probes))
	s.startAll(ctx)
	for _, p := range plan {
		res := Result{ID: p.req.ID, Level: p.req.Level, Group: p.req.Group, Title: p.req.Title}
		var v verdict
		_, checkable := checks[p.req.ID]
		switch {
		case !checkable:
			v = skip("not checked against an image: see its scenarios in SPEC.md")
		case !o.Level.Includes(p.req.Level):
			v = skip("%s requirement, not checked at --level %s", p.req.Level, o.Level)
		default:
			for _, pr := range p.chk.needs(s) {
				r := s.wait(ctx, pr)
				v.took = max(v.took, r.took)
			}
			took := v.took
			v = p.chk.eval(s)
			v.took = took
		}
		if ctx.Err() != nil && v.status != Skip {
			v = fail("interrupted: %v", context.Cause(ctx))
		}
		res.Status, res.Reason, res.Duration = v.status, v.reason, v.took
		rep.Results = append(rep.Results, res)
	}
	rep.Duration = time.Since(started)
	return rep, nil
}

func isMode(m string) bool {
	for _, x := range Modes {
		if x == m {
			return true
		}
	}
	return false
}

// imageMode is the mode an image declares: WARM for server images, else
// its EXECUTION_MODE (the watchdog's default HTTP when unset).
func imageMode(env map[string]string) string {
	m := strings.ToUpper(strings.TrimSpace(env["EXECUTION_MODE"]))
	if m == "WARM" || strings.EqualFold(strings.TrimSpace(env["WARM"]), "true") {
		return "WARM"
	}
	if m == "" {
		return "HTTP"
	}
	return m
}

// probe names one container run of a session.
type probe string

const (
	// probeInvoke: one-shot invocation with the payload (the main run).
	probeInvoke probe = "invocation"
	// probePort: one-shot HTTP invocation with RUNTIME_URL on another port.
	probePort probe = "other PORT"
	// probeFiles: one-shot FILE invocation with other INPUT_FILE/OUTPUT_FILE.
	probeFiles probe = "other file paths"
	// probeBad: one-shot invocation with the bad payload.
	probeBad probe = "bad payload"
	// probeWarm: a WARM container serving a sequence of invocations.
	probeWarm probe = "warm sequence"
)

// session is one run of the checks against one image.
type session struct {
	o    Options
	mode string
	img  *ImageConfig
	d    *Docker
	recv *receiver.Receiver

	mu     sync.Mutex
	probes map[probe]*probeRun
	sem    chan struct{}
	wg     sync.WaitGroup
}

type probeRun struct {
	done chan struct{}
	took time.Duration
	// one is the outcome of a one-shot run; warm of the warm sequence.
	one  *oneShot
	warm *warmRun
}

func (s *session) want(p probe) {
	if _, ok := s.probes[p]; !ok {
		s.probes[p] = &probeRun{done: make(chan struct{})}
	}
}

func (s *session) progress(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.o.Progress, "conformance: "+format+"\n", a...)
}

// startAll starts every wanted probe, at most Parallel at a time; the warm
// sequence first, as it is the longest.
func (s *session) startAll(ctx context.Context) {
	order := []probe{probeWarm, probeInvoke, probePort, probeFiles, probeBad}
	for _, p := range order {
		run, ok := s.probes[p]
		if !ok {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(run.done)
			select {
			case s.sem <- struct{}{}:
			case <-ctx.Done():
				run.one = &oneShot{err: ctx.Err()}
				run.warm = &warmRun{err: ctx.Err()}
				return
			}
			defer func() { <-s.sem }()
			begin := time.Now()
			s.progress("%s: starting a container", p)
			if p == probeWarm {
				run.warm = s.runWarm(ctx)
				run.took = time.Since(begin)
				s.progress("%s: done in %v%s", p, run.took.Round(10*time.Millisecond), errSuffix(run.warm.err))
				return
			}
			run.one = s.runOneShot(ctx, p)
			run.took = time.Since(begin)
			s.progress("%s: done in %v (exit code %d)%s", p, run.took.Round(10*time.Millisecond), run.one.exitCode, errSuffix(run.one.err))
		}()
	}
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

func (s *session) wait(ctx context.Context, p probe) *probeRun {
	run := s.probes[p]
	<-run.done
	return run
}

func (s *session) one(p probe) *oneShot { return s.probes[p].one }
func (s *session) warm() *warmRun       { return s.probes[probeWarm].warm }

// oneShot is what a one-shot container run showed.
type oneShot struct {
	id       string
	env      map[string]string
	err      error // the run itself failed (could not start, did not exit)
	exitCode int
	calls    []receiver.Call
	result   *result.Result
	logs     []byte
	events   []logEvent
}

// resultCode is the result's error code, "" on success, or "NO RESULT".
func (r *oneShot) resultCode() string {
	if r.result == nil {
		return "NO RESULT"
	}
	return string(r.result.ErrorCode())
}

// blocked reports whether the run never reached the function's code: the
// runtime did not start or could not be spawned.
func (r *oneShot) blocked() bool {
	c := r.resultCode()
	return r.err != nil || c == "STARTUP_ERROR" || c == "SPAWN_ERROR" || c == "NO RESULT"
}

// describe summarises a failed run for a reason.
func (r *oneShot) describe() string {
	switch {
	case r.err != nil:
		return r.err.Error()
	case r.result == nil:
		return fmt.Sprintf("no result was delivered (container exit code %d)%s", r.exitCode, logTail(r.logs))
	case r.result.Error != nil:
		return fmt.Sprintf("%s: %s", r.result.Error.Code, oneLine(r.result.Error.Message, 300))
	}
	return "succeeded with output " + oneLine(string(r.result.Output), 200)
}

func newID(kind string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "conformance-" + strings.ReplaceAll(kind, " ", "-") + "-" + hex.EncodeToString(b)
}

// oneShotEnv is the environment of a one-shot run: the invocation's
// variables, debug logs (the checks read them) and bounded timeouts.
func (s *session) oneShotEnv(id string, payload json.RawMessage, grace time.Duration) map[string]string {
	return map[string]string{
		"EXECUTION_ID":       id,
		"CALLBACK_URL":       ContainerURL(s.recv),
		"TRACE_ID":           "trace-" + id,
		"INVOCATION_PAYLOAD": string(payload),
		"TIMEOUT_MS":         strconv.FormatInt(s.o.Timeout.Milliseconds(), 10),
		"KILL_GRACE_MS":      strconv.FormatInt(grace.Milliseconds(), 10),
		"LOG_LEVEL":          "debug",
		"LOG_FORMAT":         "json",
		"WARM":               "false",
	}
}

// readyTimeout is the image's READY_TIMEOUT_MS (the watchdog's default 10 s).
func (s *session) readyTimeout() time.Duration {
	if ms, err := strconv.Atoi(strings.TrimSpace(s.img.Env["READY_TIMEOUT_MS"])); err == nil && ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return 10 * time.Second
}

// otherPort is a port for the runtime other than its usual one and WARM_PORT.
func (s *session) otherPort() (runtimeURL, healthURL string, err error) {
	base := s.img.Env["RUNTIME_URL"]
	if base == "" {
		base = "http://127.0.0.1:8080/invoke"
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", "", fmt.Errorf("the image's RUNTIME_URL %q does not parse: %v", base, err)
	}
	old := u.Port()
	port := 18123
	for strconv.Itoa(port) == old || strconv.Itoa(port) == s.img.Env["WARM_PORT"] {
		port++
	}
	u.Host = u.Hostname() + ":" + strconv.Itoa(port)
	runtimeURL = u.String()
	if h := s.img.Env["HEALTH_URL"]; h != "" {
		hu, err := url.Parse(h)
		if err == nil && hu.Port() == old {
			hu.Host = hu.Hostname() + ":" + strconv.Itoa(port)
			h = hu.String()
		}
		healthURL = h
	}
	return runtimeURL, healthURL, nil
}

// runOneShot runs one one-shot container and collects what it showed.
func (s *session) runOneShot(ctx context.Context, p probe) *oneShot {
	id := newID(string(p))
	payload := s.o.Payload
	grace := quickGrace
	switch p {
	case probeBad:
		payload = s.o.BadPayload
	case probeInvoke:
		grace = measureGrace
	}
	env := s.oneShotEnv(id, payload, grace)
	switch p {
	case probePort:
		runtimeURL, healthURL, err := s.otherPort()
		if err != nil {
			return &oneShot{id: id, err: err}
		}
		env["RUNTIME_URL"] = runtimeURL
		if healthURL != "" {
			env["HEALTH_URL"] = healthURL
		}
		if s.mode == "WARM" {
			// The same runtime, started once by a one-shot watchdog.
			env["EXECUTION_MODE"] = "HTTP"
		}
	case probeFiles:
		in := s.img.Env["INPUT_FILE"]
		if in == "" {
			in = "/tmp/input.json"
		}
		out := s.img.Env["OUTPUT_FILE"]
		if out == "" {
			out = "/tmp/output.json"
		}
		env["INPUT_FILE"] = path.Join(path.Dir(in), id+"-in.json")
		env["OUTPUT_FILE"] = path.Join(path.Dir(out), id+"-out.json")
	}
	r := &oneShot{id: id, env: env}
	c, err := s.d.Start(ctx, ContainerSpec{Image: s.o.Image, Env: env})
	if err != nil {
		r.err = err
		return r
	}
	defer c.Remove()
	bound := s.o.Timeout + grace + 30*time.Second
	if s.mode == "HTTP" || s.mode == "WARM" {
		bound += s.readyTimeout()
	}
	code, err := c.WaitExit(ctx, bound)
	r.exitCode = code
	r.logs, _ = c.Logs(context.WithoutCancel(ctx))
	r.events = parseLog(r.logs)
	if err != nil {
		r.err = fmt.Errorf("%v%s", err, logTail(r.logs))
	}
	r.calls = s.recv.For(id)
	if len(r.calls) > 0 {
		res, err := r.calls[0].Result()
		if err == nil {
			r.result = &res
		} else if r.err == nil {
			r.err = err
		}
	}
	return r
}

// logEvent is one JSON log line of the watchdog.
type logEvent struct {
	Time   time.Time
	Msg    string
	Fields map[string]any
}

// parseLog picks the watchdog's JSON log lines out of a container's log.
func parseLog(logs []byte) []logEvent {
	var out []logEvent
	for _, line := range strings.Split(string(logs), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		msg, ok1 := m["msg"].(string)
		ts, ok2 := m["time"].(string)
		if !ok1 || !ok2 {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		out = append(out, logEvent{Time: t, Msg: msg, Fields: m})
	}
	return out
}

// find returns the first event with msg.
func find(events []logEvent, msg string) (logEvent, bool) {
	for _, e := range events {
		if e.Msg == msg {
			return e, true
		}
	}
	return logEvent{}, false
}

// distinct counts the distinct values of field among the events with msg.
func distinct(events []logEvent, msg, field string) int {
	seen := map[any]bool{}
	for _, e := range events {
		if v, ok := e.Fields[field]; ok && e.Msg == msg {
			seen[v] = true
		}
	}
	return len(seen)
}

// firstNumber is field of the first event with msg that has it.
func firstNumber(events []logEvent, msg, field string) (float64, bool) {
	for _, e := range events {
		if e.Msg == msg {
			if f, ok := number(e, field); ok {
				return f, true
			}
		}
	}
	return 0, false
}

func number(e logEvent, field string) (float64, bool) {
	f, ok := e.Fields[field].(float64)
	return f, ok
}

// logTail quotes the end of a container log for a reason.
func logTail(logs []byte) string {
	t := strings.TrimSpace(lastLines(string(logs), 3))
	if t == "" {
		return ""
	}
	return "; log: " + oneLine(t, 400)
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
