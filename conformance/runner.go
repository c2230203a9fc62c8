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

// longGrace is the KILL_GRACE_MS of the one-shot invocation RT-SIG-001
// compares with a run at quickGrace: a runtime that ignores SIGTERM makes
// the first run 9 s longer, far above the noise of two container starts
// (a JVM's start varies by seconds on a busy machine).
const longGrace = 10 * time.Second

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
	SpecVersion string `json:"spec_version"`
	Image       string `json:"image"`
	Mode        string `json:"mode"`
	// Runtime is how the function runs: HTTP, STDIO or FILE. In mode WARM,
	// HTTP is a warm runtime and STDIO or FILE the per-invocation server
	// form (WARM=true with that EXECUTION_MODE).
	Runtime  string        `json:"runtime"`
	Level    Level         `json:"level"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"-"`
	Results  []Result      `json:"results"`
	spec     *Spec
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

// Unchecked returns the MUST requirements that apply to the image but were
// not checked (skipped): without them a run cannot say the image conforms.
func (r *Report) Unchecked() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Level == Must && res.Status == Skip {
			out = append(out, res)
		}
	}
	return out
}

// Conforms reports whether every MUST requirement that applies was checked
// and passed.
func (r *Report) Conforms() bool {
	_, _, _, mustFailed := r.Counts()
	return mustFailed == 0 && len(r.Unchecked()) == 0
}

// Verdict is the report's one-word outcome: CONFORMS, DOES NOT CONFORM, or
// NOT VERIFIED (no MUST failed, but some were not checked).
func (r *Report) Verdict() string {
	_, _, _, mustFailed := r.Counts()
	switch {
	case mustFailed > 0:
		return "DOES NOT CONFORM"
	case len(r.Unchecked()) > 0:
		return "NOT VERIFIED"
	}
	return "CONFORMS"
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
		return nil, errors.New("no image given: name one with --image")
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
	kind := mode
	if mode == "WARM" {
		kind = serverRuntime(img.Env)
	}

	lines := mode == "WARM" && kind == "STDIO" && strings.EqualFold(strings.TrimSpace(img.Env["STDIO_PROTOCOL"]), "lines")
	s := &session{ctx: ctx, o: o, mode: mode, kind: kind, lines: lines, img: img, d: d, probes: map[probe]*probeRun{},
		sem: make(chan struct{}, o.Parallel), holds: map[string]*hold{}}
	recv, err := StartReceiver(s.onCallback)
	if err != nil {
		return nil, err
	}
	defer recv.Close()
	s.recv = recv
	rep := &Report{SpecVersion: spec.Version, Image: o.Image, Mode: mode, Runtime: kind, Level: o.Level, Started: started, spec: spec}

	// Decide what is checked, start every container run that needs, in
	// parallel, then judge each requirement in the spec's order.
	type planned struct {
		req Requirement
		chk *check
	}
	var plan []planned
	for _, req := range spec.Requirements {
		if req.Side != "RT" || !s.applies(req) {
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
	s.progress("%s (%s): %d requirements, %d container runs", o.Image, s.describeMode(), len(plan), len(s.probes))
	s.startAll(ctx)
	defer s.wg.Wait()
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

// serverRuntime is how a server image runs its function: STDIO or FILE
// for WARM=true with that EXECUTION_MODE (one process per invocation),
// else a warm HTTP runtime.
func serverRuntime(env map[string]string) string {
	switch m := strings.ToUpper(strings.TrimSpace(env["EXECUTION_MODE"])); m {
	case "STDIO", "FILE":
		return m
	}
	return "HTTP"
}

// applies reports whether a requirement applies to the image. The
// per-invocation server form (WARM with STDIO or FILE) is checked against
// the requirements of its function's mode: "WARM" in a requirement's modes
// means a warm HTTP runtime. RT-LINES-* apply to a STDIO function kept warm
// (STDIO_PROTOCOL=lines) only.
func (s *session) applies(r Requirement) bool {
	if strings.HasPrefix(r.ID, "RT-LINES-") {
		return s.lines
	}
	if s.mode == "WARM" && s.kind != "HTTP" {
		return r.AppliesTo(s.kind)
	}
	return r.AppliesTo(s.mode)
}

// perInvocation reports whether the image is the per-invocation server form.
func (s *session) perInvocation() bool { return s.mode == "WARM" && s.kind != "HTTP" }

func (s *session) describeMode() string {
	if s.lines {
		return "WARM, a STDIO process kept warm (STDIO_PROTOCOL=lines)"
	}
	if s.perInvocation() {
		return "WARM, " + s.kind + " per invocation"
	}
	return s.mode
}

// probe names one container run of a session.
type probe string

const (
	// probeInvoke: one-shot invocation with the payload (the main run); the
	// container's processes are listed while its result is delivered.
	probeInvoke probe = "invocation"
	// probeGrace: the same invocation with a short KILL_GRACE_MS: the
	// difference in run time shows a runtime that ignores SIGTERM.
	probeGrace probe = "short grace"
	// probePort: one-shot HTTP invocation with RUNTIME_URL on another port.
	probePort probe = "other PORT"
	// probeWarmPort: one-shot HTTP invocation with RUNTIME_URL on WARM_PORT's
	// port, run only to tell why a warm runtime never became ready.
	probeWarmPort probe = "WARM_PORT as PORT"
	// probeFiles: one-shot FILE invocation with other INPUT_FILE/OUTPUT_FILE.
	probeFiles probe = "other file paths"
	// probeBad: one-shot invocation with the bad payload.
	probeBad probe = "bad payload"
	// probeWarm: a WARM container serving a sequence of invocations.
	probeWarm probe = "warm sequence"
)

// session is one run of the checks against one image.
type session struct {
	ctx  context.Context
	o    Options
	mode string // HTTP, STDIO, FILE or WARM
	kind string // how the function runs: HTTP, STDIO or FILE
	// lines: a STDIO function kept warm (STDIO_PROTOCOL=lines), judged
	// against RT-LINES-* as well.
	lines bool
	img   *ImageConfig
	d     *Docker
	recv  *receiver.Receiver

	mu     sync.Mutex
	probes map[probe]*probeRun
	holds  map[string]*hold
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
	order := []probe{probeWarm, probeInvoke, probeGrace, probePort, probeFiles, probeBad}
	for _, p := range order {
		if _, ok := s.probes[p]; ok {
			s.start(ctx, p)
		}
	}
}

func (s *session) start(ctx context.Context, p probe) {
	run := s.probes[p]
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

// lazy runs a probe that only some verdicts need, when one does, and waits
// for it. Checks are judged one after another, so no lock is needed.
func (s *session) lazy(p probe) *oneShot {
	if _, ok := s.probes[p]; !ok {
		s.want(p)
		s.start(s.ctx, p)
	}
	return s.wait(s.ctx, p).one
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
	// ran is the container's run time, from Docker's start to its exit.
	ran time.Duration
	// calls are every callback for the execution; result is the
	// watchdog's (the one with the execution's X-Execution-Id), validated;
	// badResult says why the watchdog's callback is not a result; others
	// are the callbacks that are not the watchdog's.
	calls     []receiver.Call
	result    *result.Result
	badResult error
	others    []receiver.Call
	logs      []byte
	// procs are the container's processes while the result was delivered.
	procs *snapshot
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
	case r.result == nil && r.badResult != nil:
		return fmt.Sprintf("the watchdog's callback is a malformed result: %v", r.badResult)
	case r.result == nil:
		return fmt.Sprintf("no result was delivered by the watchdog (no callback with X-Execution-Id: %s; container exit code %d)%s%s",
			r.id, r.exitCode, othersNote(r.others), logTail(r.logs))
	case r.result.Error != nil:
		return fmt.Sprintf("%s: %s", r.result.Error.Code, excerpt(r.result.Error.Message, 600))
	}
	return "succeeded with output " + oneLine(string(r.result.Output), 200)
}

// othersNote mentions callbacks that were not the watchdog's.
func othersNote(others []receiver.Call) string {
	if len(others) == 0 {
		return ""
	}
	return fmt.Sprintf("; %d other callback(s) came without it (see RT-CB-001)", len(others))
}

func newID(kind string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "conformance-" + strings.ReplaceAll(strings.ReplaceAll(kind, " ", "-"), "_", "-") + "-" + hex.EncodeToString(b)
}

// oneShotEnv is the environment of a one-shot run: the invocation's
// variables as the control plane sets them, and bounded timeouts.
func (s *session) oneShotEnv(id string, payload json.RawMessage, grace time.Duration) map[string]string {
	env := map[string]string{
		"EXECUTION_ID":       id,
		"CALLBACK_URL":       ContainerURL(s.recv),
		"TRACE_ID":           "trace-" + id,
		"INVOCATION_PAYLOAD": string(payload),
		"TIMEOUT_MS":         strconv.FormatInt(s.o.Timeout.Milliseconds(), 10),
		"KILL_GRACE_MS":      strconv.FormatInt(grace.Milliseconds(), 10),
		"WARM":               "false",
	}
	if s.mode == "WARM" {
		// The same function, run by a one-shot watchdog.
		env["EXECUTION_MODE"] = s.kind
	}
	return env
}

// readyTimeout is the image's READY_TIMEOUT_MS (the watchdog's default 10 s).
func (s *session) readyTimeout() time.Duration {
	if ms, err := strconv.Atoi(strings.TrimSpace(s.img.Env["READY_TIMEOUT_MS"])); err == nil && ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return 10 * time.Second
}

// warmPort is the image's WARM_PORT (the watchdog's default 8080).
func (s *session) warmPort() string {
	if p := strings.TrimSpace(s.img.Env["WARM_PORT"]); p != "" {
		return p
	}
	return "8080"
}

// runtimeURLs returns RUNTIME_URL and HEALTH_URL moved to another port
// (port 0: one other than the runtime's usual one and WARM_PORT).
func (s *session) runtimeURLs(port int) (runtimeURL, healthURL string, err error) {
	base := s.img.Env["RUNTIME_URL"]
	if base == "" {
		base = "http://127.0.0.1:8080/invoke"
		if s.mode == "WARM" {
			base = "http://127.0.0.1:8081/invoke"
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", "", fmt.Errorf("the image's RUNTIME_URL %q does not parse: %v", base, err)
	}
	old := u.Port()
	if port == 0 {
		port = 18123
		for strconv.Itoa(port) == old || strconv.Itoa(port) == s.warmPort() {
			port++
		}
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
		grace = longGrace
	}
	env := s.oneShotEnv(id, payload, grace)
	switch p {
	case probePort, probeWarmPort:
		port := 0
		if p == probeWarmPort {
			port, _ = strconv.Atoi(s.warmPort())
		}
		runtimeURL, healthURL, err := s.runtimeURLs(port)
		if err != nil {
			return &oneShot{id: id, err: err}
		}
		env["RUNTIME_URL"] = runtimeURL
		if healthURL != "" {
			env["HEALTH_URL"] = healthURL
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
	var h *hold
	if p == probeInvoke {
		h = s.holdFor(id)
	}
	c, err := s.d.Start(ctx, ContainerSpec{Image: s.o.Image, Env: env})
	if err != nil {
		r.err = err
		return r
	}
	defer c.Remove()
	if h != nil {
		h.container <- c
	}
	bound := s.o.Timeout + grace + 30*time.Second
	if s.kind == "HTTP" {
		bound += s.readyTimeout()
	}
	code, err := c.WaitExit(ctx, bound)
	r.exitCode = code
	r.ran = c.RunTime(context.WithoutCancel(ctx))
	r.logs, _ = c.Logs(context.WithoutCancel(ctx))
	if err != nil {
		r.err = fmt.Errorf("%v%s", err, logTail(r.logs))
	}
	if h != nil {
		r.procs = h.taken()
	}
	// Every callback is in: the container, and whatever posted them, is gone.
	r.calls = s.recv.For(id)
	var own *receiver.Call
	own, r.others = judgeCalls(id, r.calls)
	if own != nil {
		res, err := ValidateResult(own.Body)
		if err == nil {
			r.result = &res
		} else {
			r.badResult = err
		}
	}
	return r
}

// judgeCalls picks the watchdog's callback among an execution's: the one
// that carries the execution's X-Execution-Id, the first valid result when
// several do. The rest are others.
func judgeCalls(id string, calls []receiver.Call) (own *receiver.Call, others []receiver.Call) {
	pick := -1
	for i, c := range calls {
		if c.Header.Get("X-Execution-Id") != id {
			continue
		}
		if pick < 0 {
			pick = i
		}
		if _, err := ValidateResult(c.Body); err == nil {
			pick = i
			break
		}
	}
	for i, c := range calls {
		if i != pick {
			others = append(others, c)
		}
	}
	if pick >= 0 {
		own = &calls[pick]
	}
	return own, others
}

// ValidateResult decodes a callback body that must be a result:
// {"success":bool,"output":...,"error":null|{"code","message"}}. A body
// without "success", or a failure without an error code, is malformed.
func ValidateResult(body []byte) (result.Result, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return result.Result{}, fmt.Errorf("the body is not a JSON object (%v): %s", err, oneLine(string(body), 200))
	}
	sv, ok := raw["success"]
	if !ok {
		return result.Result{}, fmt.Errorf(`the body has no "success" field: %s`, oneLine(string(body), 200))
	}
	var success bool
	if err := json.Unmarshal(sv, &success); err != nil {
		return result.Result{}, fmt.Errorf(`"success" is %s, not true or false`, oneLine(string(sv), 50))
	}
	res, err := result.Decode(body)
	if err != nil {
		return result.Result{}, fmt.Errorf("the body does not decode as a result (%v): %s", err, oneLine(string(body), 200))
	}
	if !success && (res.Error == nil || res.Error.Code == "") {
		return result.Result{}, fmt.Errorf(`a failure ("success":false) without "error":{"code","message"}: %s`, oneLine(string(body), 200))
	}
	if success && res.Error != nil {
		return result.Result{}, fmt.Errorf(`a success with an "error": %s`, oneLine(string(body), 200))
	}
	return res, nil
}

// snapshot is a container's process list at one moment.
type snapshot struct {
	root  string // the host pid of the container's PID 1
	procs []Process
	err   error
}

// hold keeps the watchdog's callback of one execution waiting while the
// container's processes are listed.
type hold struct {
	id        string
	container chan *Container
	once      sync.Once
	done      chan struct{}
	snap      *snapshot
}

func (s *session) holdFor(id string) *hold {
	h := &hold{id: id, container: make(chan *Container, 1), done: make(chan struct{})}
	s.mu.Lock()
	s.holds[id] = h
	s.mu.Unlock()
	return h
}

// taken returns the snapshot taken during the delivery (nil: none came).
func (h *hold) taken() *snapshot {
	select {
	case <-h.done:
		return h.snap
	default:
		return nil
	}
}

// onCallback runs for every callback before it is answered: the
// watchdog's callback of a held execution waits for the process list.
func (s *session) onCallback(c receiver.Call) {
	id := c.ExecutionID()
	s.mu.Lock()
	h := s.holds[id]
	s.mu.Unlock()
	if h == nil || c.Header.Get("X-Execution-Id") != id {
		return
	}
	h.once.Do(func() {
		defer close(h.done)
		select {
		case ct := <-h.container:
			h.snap = takeSnapshot(s.ctx, ct)
			h.container <- ct
		case <-time.After(20 * time.Second):
			h.snap = &snapshot{err: errors.New("the container was not known 20s after its callback")}
		}
	})
}

// takeSnapshot lists a running container's processes.
func takeSnapshot(ctx context.Context, c *Container) *snapshot {
	st, err := c.State(ctx)
	if err != nil {
		return &snapshot{err: err}
	}
	procs, err := c.Processes(ctx)
	return &snapshot{root: strconv.Itoa(st.Pid), procs: procs, err: err}
}

// logTail quotes the end of a container log for a reason.
func logTail(logs []byte) string {
	t := excerpt(string(logs), 400)
	if t == "" {
		return ""
	}
	return "; log: " + t
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
