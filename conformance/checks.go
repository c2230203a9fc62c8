package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"

	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/result"
)

// checks are the RT requirements `conformance run` checks, by id. SPEC.md
// names `conformance run` among the scenarios of exactly these (a test
// keeps both in step). No check reads the watchdog's log: a runtime's
// verdict rests on what can be seen from outside the container (its
// processes, the callbacks' headers and bodies, exit codes, timing), so it
// is the same whichever watchdog the image uses.
var checks = map[string]check{
	"RT-IMG-001":   {needs: mainRun, eval: checkEntrypoint},
	"RT-IMG-002":   {needs: none, eval: checkDeclaredMode},
	"RT-IMG-003":   {needs: none, eval: checkNonRoot},
	"RT-PID1-001":  {needs: mainRun, eval: checkPID1},
	"RT-HTTP-001":  {needs: mainRun, eval: checkHealth},
	"RT-HTTP-002":  {needs: mainRun, eval: checkInvoke},
	"RT-HTTP-003":  {needs: with(probePort), eval: checkPort},
	"RT-STDIO-001": {needs: mainRun, eval: checkProtocolSuccess},
	"RT-FILE-001":  {needs: mainRun, eval: checkProtocolSuccess},
	"RT-FILE-002":  {needs: with(probeFiles), eval: checkFilePaths},
	"RT-FN-001":    {needs: mainRun, eval: checkOutput},
	"RT-ERR-001":   {needs: badRun, eval: checkBadPayload},
	"RT-ERR-002":   {needs: badRun, eval: checkExplained},
	"RT-SIG-001":   {needs: stopRuns, eval: checkStop},
	"RT-WARM-001":  {needs: mainRun, eval: checkWarmSequence},
	"RT-WARM-002":  {needs: badRun, eval: checkWarmSurvivesFailure},
	"RT-CB-001":    {needs: everyRun, eval: checkReportedOnce},
	// A lines function: one process answers the whole sequence, one result
	// per request, and goes on after a payload it cannot handle.
	"RT-LINES-001": {needs: mainRun, eval: checkWarmSequence},
	"RT-LINES-002": {needs: badRun, eval: checkWarmSurvivesFailure},
}

func none(*session) []probe { return nil }

// with is the main run and p: the verdict on p's run depends on whether
// the main run got as far.
func with(p probe) func(*session) []probe {
	return func(s *session) []probe { return append(mainRun(s), p) }
}

// mainRun is the run with the payload: a one-shot invocation, or the warm
// sequence in WARM mode.
func mainRun(s *session) []probe {
	if s.mode == "WARM" {
		return []probe{probeWarm}
	}
	return []probe{probeInvoke}
}

// badRun is the run with the bad payload, when one was given.
func badRun(s *session) []probe {
	if s.o.BadPayload == nil {
		return nil
	}
	if s.mode == "WARM" {
		return []probe{probeWarm}
	}
	return []probe{probeBad}
}

// stopRuns are the runs RT-SIG-001 compares: the one-shot invocation with
// a long and a short KILL_GRACE_MS, or the warm sequence's docker stop.
func stopRuns(s *session) []probe {
	if s.mode == "WARM" {
		return []probe{probeWarm}
	}
	return []probe{probeInvoke, probeGrace}
}

// everyRun is every run of the session: a result must be reported once in
// each of them.
func everyRun(s *session) []probe {
	var rest []probe
	for p := range s.probes {
		if !slices.Contains(mainRun(s), p) {
			rest = append(rest, p)
		}
	}
	slices.Sort(rest)
	return append(mainRun(s), rest...)
}

// blockedWarm is the verdict for checks that need a ready WARM container.
func blockedWarm(s *session, w *warmRun) (verdict, bool) {
	if w.ready {
		return verdict{}, false
	}
	if s.kind == "HTTP" {
		if v, ok := portCause(s); ok {
			return skip("not reached: %s (see RT-HTTP-003)", v), true
		}
		return skip("not reached: %s (see RT-HTTP-001)", errText(w.err)), true
	}
	return skip("not reached: %s (see RT-IMG-001)", errText(w.err)), true
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

func checkEntrypoint(s *session) verdict {
	if s.mode == "WARM" {
		w := s.warm()
		if !w.served {
			return fail("the watchdog did not serve /health on WARM_PORT %s: %s%s", s.warmPort(), errText(w.err), logTail(w.logs))
		}
		return pass("/health on WARM_PORT %s answered (%s)", s.warmPort(), w.lastHealth)
	}
	r := s.one(probeInvoke)
	switch {
	case r.err != nil:
		return fail("%s", r.err)
	case r.result == nil:
		return fail("%s", r.describe())
	}
	if r.exitCode != 0 {
		return fail("the watchdog delivered its result, but the container exited with code %d, want 0%s", r.exitCode, logTail(r.logs))
	}
	return pass("the watchdog delivered one result (X-Execution-Id: %s), container exit code 0", r.id)
}

func checkDeclaredMode(s *session) verdict {
	env := s.img.Env
	mode, set := env["EXECUTION_MODE"]
	mode = strings.ToUpper(strings.TrimSpace(mode))
	warm := strings.EqualFold(strings.TrimSpace(env["WARM"]), "true")
	if !set || mode == "" {
		want := s.mode
		if s.perInvocation() {
			want = s.kind + " and WARM=true"
		}
		return fail("the image does not set EXECUTION_MODE (the watchdog would run it as HTTP); add ENV EXECUTION_MODE=%s", want)
	}
	if s.mode == "WARM" {
		if mode == "WARM" || (warm && (mode == "HTTP" || mode == "STDIO" || mode == "FILE")) {
			return pass("EXECUTION_MODE=%s%s", mode, map[bool]string{true: " WARM=true", false: ""}[warm])
		}
		return fail("a WARM image sets EXECUTION_MODE=WARM (or WARM=true with EXECUTION_MODE HTTP, STDIO or FILE); this one sets EXECUTION_MODE=%s WARM=%q", mode, env["WARM"])
	}
	if warm || mode == "WARM" {
		return fail("the image runs in server mode (EXECUTION_MODE=%s WARM=%q), not one-shot %s", mode, env["WARM"], s.mode)
	}
	if mode != s.mode {
		return fail("the image sets EXECUTION_MODE=%s, not %s", mode, s.mode)
	}
	return pass("EXECUTION_MODE=%s", mode)
}

func checkNonRoot(s *session) verdict {
	user := strings.TrimSpace(s.img.User)
	name, _, _ := strings.Cut(user, ":")
	if user == "" || name == "root" || name == "0" {
		if user == "" {
			user = "unset"
		}
		return fail("the image runs as root (USER %s); add a USER with a non-zero uid", user)
	}
	return pass("USER %s", user)
}

// functionWords is the first word of the image's WATCHDOG_CMD.
func (s *session) functionWord() string {
	f := strings.Fields(strings.Trim(strings.TrimSpace(s.img.Env["WATCHDOG_CMD"]), `"'`))
	if len(f) == 0 {
		return ""
	}
	return strings.Trim(f[0], `"'`)
}

// isFunction reports whether a process's command line is the function's:
// its program is WATCHDOG_CMD's first word.
func (s *session) isFunction(args string) bool {
	word := s.functionWord()
	f := strings.Fields(args)
	if word == "" || len(f) == 0 {
		return false
	}
	return path.Base(f[0]) == path.Base(word) || strings.Contains(args, word)
}

// judgePID1 reads one process list: the container's PID 1 must be the
// process that runs the function, so every other process must be the
// function (a child of PID 1) or one of its descendants. A wrapper or shell
// in front of the watchdog shows as a child of PID 1 that is not the
// function.
func (s *session) judgePID1(snap *snapshot, when string) (verdict, bool) {
	if snap == nil {
		return skip("not reached: no process list was taken %s", when), false
	}
	if snap.err != nil {
		return skip("not reached: cannot list the container's processes %s: %v", when, snap.err), false
	}
	byPID := map[string]Process{}
	for _, p := range snap.procs {
		byPID[p.PID] = p
	}
	root, ok := byPID[snap.root]
	if !ok {
		return skip("not reached: PID 1 (host pid %s) was not among the container's processes %s", snap.root, when), false
	}
	for _, p := range snap.procs {
		if p.PID == snap.root {
			continue
		}
		q := p
		for i := 0; i < 64 && q.PPID != snap.root; i++ {
			parent, ok := byPID[q.PPID]
			if !ok {
				break
			}
			q = parent
		}
		if q.PPID == snap.root && !s.isFunction(q.Command) {
			return fail("PID 1 is %q, and %q runs under it %s, which is not the function (WATCHDOG_CMD %q): a wrapper or shell is in front of the watchdog; use an exec-form ENTRYPOINT [\"/usr/local/bin/watchdog\"]",
				oneLine(root.Command, 120), oneLine(q.Command, 120), when, s.img.Env["WATCHDOG_CMD"]), true
		}
	}
	return pass("PID 1 %q runs the function directly (%d process(es) %s)", oneLine(root.Command, 80), len(snap.procs), when), true
}

func checkPID1(s *session) verdict {
	if s.mode == "WARM" {
		w := s.warm()
		if v, blocked := blockedWarm(s, w); blocked && w.procsReady == nil {
			return v
		}
		v, _ := s.judgePID1(w.procsReady, "once /health answered 200")
		return v
	}
	r := s.one(probeInvoke)
	if r.err != nil && r.procs == nil {
		return fail("%s", r.err)
	}
	if r.procs == nil {
		return skip("not reached: the watchdog delivered no result, so no process list was taken while it did (see RT-IMG-001)")
	}
	v, _ := s.judgePID1(r.procs, "while the result was delivered")
	return v
}

// portCause tells why a warm HTTP runtime never became ready when the
// cause is its port: it does not listen on PORT, and listens on WARM_PORT's
// port instead, where the watchdog listens in server mode.
func portCause(s *session) (string, bool) {
	if s.mode != "WARM" || s.kind != "HTTP" {
		return "", false
	}
	if _, ok := s.probes[probePort]; !ok {
		return "", false
	}
	r := s.wait(s.ctx, probePort).one
	if r.err != nil || r.resultCode() != "STARTUP_ERROR" {
		return "", false
	}
	wp := s.lazy(probeWarmPort)
	if wp.err == nil && wp.result != nil && wp.result.Success {
		return fmt.Sprintf("the runtime ignores PORT and listens on %s, WARM_PORT, where the watchdog itself listens in server mode", s.warmPort()), true
	}
	return "", false
}

func checkHealth(s *session) verdict {
	if s.mode == "WARM" {
		w := s.warm()
		if !w.ready {
			if cause, ok := portCause(s); ok {
				return skip("not reached: %s (see RT-HTTP-003)", cause)
			}
			return fail("/health did not answer 200: %s%s", errText(w.err), logTail(w.logs))
		}
		return pass("/health answered 200 %v after the start", w.readyAfter.Round(10*time.Millisecond))
	}
	r := s.one(probeInvoke)
	switch code := r.resultCode(); {
	case r.err != nil:
		return fail("%s", r.err)
	case code == "STARTUP_ERROR" || code == "SPAWN_ERROR":
		return fail("%s", r.describe())
	case code == "NO RESULT":
		return skip("not reached: %s (see RT-IMG-001)", r.describe())
	}
	return pass("the runtime became ready and was invoked")
}

func checkInvoke(s *session) verdict {
	if s.mode == "WARM" {
		w := s.warm()
		if v, blocked := blockedWarm(s, w); blocked {
			return v
		}
		if len(w.calls) == 0 || !w.calls[0].ok() {
			return fail("the first invocation failed: %s", w.calls[0].describe())
		}
		return pass("POST /invoke answered one JSON document")
	}
	r := s.one(probeInvoke)
	if r.blocked() {
		return skip("not reached: %s (see RT-HTTP-001)", r.describe())
	}
	if !r.result.Success {
		return fail("%s", r.describe())
	}
	return pass("POST RUNTIME_URL answered 2xx with one JSON document")
}

func checkPort(s *session) verdict {
	r := s.one(probePort)
	port := r.env["RUNTIME_URL"]
	if r.err == nil && r.result != nil && r.result.Success {
		return pass("with RUNTIME_URL=%s the runtime listened on PORT and answered", port)
	}
	if cause, ok := portCause(s); ok {
		return fail("with RUNTIME_URL=%s (PORT set to its port) the runtime never became ready, but with PORT=%s it did: %s; listen on PORT",
			port, s.warmPort(), cause)
	}
	if s.mode != "WARM" && s.one(probeInvoke).blocked() {
		return skip("not reached: the runtime does not start on its own port either (see RT-HTTP-001)")
	}
	if s.mode == "WARM" && !s.warm().ready {
		return skip("not reached: the warm runtime never became ready (see RT-HTTP-001)")
	}
	if r.err == nil && r.resultCode() == "STARTUP_ERROR" {
		return fail("with RUNTIME_URL=%s (PORT set to its port) the runtime never became ready: it does not listen on PORT; %s", port, r.describe())
	}
	return fail("with RUNTIME_URL=%s: %s", port, r.describe())
}

func checkProtocolSuccess(s *session) verdict {
	what := "wrote one JSON document on stdout and exited 0"
	switch {
	case s.kind == "FILE":
		what = "wrote one JSON document to OUTPUT_FILE and exited 0"
	case s.lines:
		what = "answered its request line with one result line"
	}
	if s.perInvocation() {
		w := s.warm()
		if v, blocked := blockedWarm(s, w); blocked {
			return v
		}
		for i, c := range w.calls {
			if !c.ok() {
				return fail("invocation %d of %d through POST /invoke: %s", i+1, len(w.calls), c.describe())
			}
		}
		return pass("%s, in each of %d invocations through POST /invoke", what, len(w.calls))
	}
	r := s.one(probeInvoke)
	switch {
	case r.err != nil:
		return fail("%s", r.err)
	case r.result == nil:
		return fail("%s", r.describe())
	case r.result.Success:
		return pass("%s", what)
	case r.resultCode() == "TIMEOUT":
		return fail("did not exit within TIMEOUT_MS=%d: %s", s.o.Timeout.Milliseconds(), r.describe())
	}
	return fail("%s", r.describe())
}

func checkFilePaths(s *session) verdict {
	r := s.one(probeFiles)
	if r.err == nil && r.result != nil && r.result.Success {
		return pass("used INPUT_FILE=%s and OUTPUT_FILE=%s", r.env["INPUT_FILE"], r.env["OUTPUT_FILE"])
	}
	ok := false
	if s.perInvocation() {
		w := s.warm()
		ok = len(w.calls) > 0 && w.calls[0].ok()
	} else if main := s.one(probeInvoke); main.result != nil && main.result.Success {
		ok = true
	}
	if !ok {
		return skip("not reached: the function fails with its usual paths too (see RT-FILE-001)")
	}
	return fail("with INPUT_FILE=%s and OUTPUT_FILE=%s: %s", r.env["INPUT_FILE"], r.env["OUTPUT_FILE"], r.describe())
}

// DecodeJSON decodes one JSON document for comparison, numbers as written.
func DecodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// sameNumber compares two JSON numbers by value: 5.0 is 5, 1e2 is 100.
var sameNumber = cmp.Comparer(func(a, b json.Number) bool {
	x, ok1 := new(big.Rat).SetString(string(a))
	y, ok2 := new(big.Rat).SetString(string(b))
	if !ok1 || !ok2 {
		return a == b
	}
	return x.Cmp(y) == 0
})

// Comparison says how DiffJSON compares outputs, for reports.
const Comparison = "compared as JSON values: key order and white space do not matter, numbers are compared by value (5.0 equals 5, 1e2 equals 100)"

// DiffJSON compares two JSON documents as values (see Comparison); ""
// when they are equal.
func DiffJSON(want, got []byte) (string, error) {
	w, err := DecodeJSON(want)
	if err != nil {
		return "", fmt.Errorf("the expected output: %w", err)
	}
	g, err := DecodeJSON(got)
	if err != nil {
		return "", fmt.Errorf("the output: %w", err)
	}
	return cmp.Diff(w, g, sameNumber), nil
}

func checkOutput(s *session) verdict {
	if s.o.Expect == nil {
		return skip("no expected output given (--expect, or a manifest's example.output with --function)")
	}
	var outputs []json.RawMessage
	if s.mode == "WARM" {
		w := s.warm()
		if v, blocked := blockedWarm(s, w); blocked {
			return v
		}
		for i, c := range w.calls {
			if !c.ok() {
				return fail("invocation %d failed: %s", i+1, c.describe())
			}
			outputs = append(outputs, c.result.Output)
		}
	} else {
		r := s.one(probeInvoke)
		if r.blocked() {
			return skip("not reached: %s", r.describe())
		}
		if !r.result.Success {
			return fail("%s", r.describe())
		}
		outputs = append(outputs, r.result.Output)
	}
	for i, out := range outputs {
		diff, err := DiffJSON(s.o.Expect, out)
		if err != nil {
			return fail("%v", err)
		}
		if diff != "" {
			return fail("output %d differs from the expected one (%s; -want +got): %s", i+1, Comparison, oneLine(diff, 600))
		}
	}
	return pass("the output is the expected one (%s)", Comparison)
}

// badOutcome is the result the bad payload got.
func badOutcome(s *session) (res *result.Result, blocked string, err error) {
	if s.mode == "WARM" {
		w := s.warm()
		if !w.ready {
			v, _ := blockedWarm(s, w)
			return nil, strings.TrimPrefix(v.reason, "not reached: "), nil
		}
		if w.bad == nil || w.bad.err != nil {
			return nil, "", fmt.Errorf("%s", w.bad.describe())
		}
		return w.bad.result, "", nil
	}
	r := s.one(probeBad)
	if r.err != nil {
		return nil, "", r.err
	}
	if c := r.resultCode(); c == "STARTUP_ERROR" || c == "SPAWN_ERROR" {
		return nil, r.describe(), nil
	}
	if r.result == nil {
		return nil, "", fmt.Errorf("%s", r.describe())
	}
	return r.result, "", nil
}

func checkBadPayload(s *session) verdict {
	if s.o.BadPayload == nil {
		return skip("no bad payload given (--bad-payload)")
	}
	res, blocked, err := badOutcome(s)
	switch {
	case blocked != "":
		return skip("not reached: %s", blocked)
	case err != nil:
		return fail("%v", err)
	case res.Success:
		how := "exit non-zero"
		if s.kind == "HTTP" {
			how = "answer 4xx or 5xx"
		}
		return fail("the bad payload succeeded with output %s: a function that cannot handle its payload must %s, not report the error in a successful output",
			oneLine(string(res.Output), 200), how)
	case res.ErrorCode() == result.Timeout:
		return fail("the function hung on the bad payload until TIMEOUT_MS: %s", excerpt(res.Error.Message, 300))
	case res.ErrorCode() != result.FunctionError:
		return fail("%s: %s", res.ErrorCode(), excerpt(res.Error.Message, 400))
	}
	return pass("FUNCTION_ERROR: %s", excerpt(res.Error.Message, 300))
}

func checkExplained(s *session) verdict {
	if s.o.BadPayload == nil {
		return skip("no bad payload given (--bad-payload)")
	}
	res, blocked, err := badOutcome(s)
	switch {
	case blocked != "":
		return skip("not reached: %s", blocked)
	case err != nil:
		return fail("%v", err)
	case res.Success || res.Error == nil:
		return skip("not reached: the bad payload did not fail (see RT-ERR-001)")
	}
	msg := strings.TrimSpace(res.Error.Message)
	if msg == "" || msg == string(res.Error.Code) {
		return fail("the failure's message is empty: the function gave no explanation")
	}
	return pass("the failure says: %s", excerpt(msg, 300))
}

// sigtermExcess is how much longer a one-shot run with KILL_GRACE_MS of
// longGrace may take than one with quickGrace before the runtime is judged
// to ignore SIGTERM: half the difference, well above the noise of two
// container starts.
const sigtermExcess = (longGrace - quickGrace) / 2

func checkStop(s *session) verdict {
	if s.mode == "WARM" {
		w := s.warm()
		if v, blocked := blockedWarm(s, w); blocked {
			return v
		}
		if w.stopErr != nil {
			return fail("docker stop: %v", w.stopErr)
		}
		if w.exitCode != 0 {
			return fail("after docker stop the container exited with code %d, want 0", w.exitCode)
		}
		if w.stopTook >= stopBudget {
			return fail("docker stop took %v with KILL_GRACE_MS=%d, want under %v: the runtime ignores SIGTERM or is slow to stop",
				w.stopTook.Round(10*time.Millisecond), measureGrace.Milliseconds(), stopBudget)
		}
		return pass("docker stop took %v, exit code 0", w.stopTook.Round(10*time.Millisecond))
	}
	long, short := s.one(probeInvoke), s.one(probeGrace)
	if long.blocked() || short.blocked() {
		return skip("not reached: the runtime was not invoked (see RT-HTTP-001)")
	}
	if long.ran == 0 || short.ran == 0 {
		return skip("not reached: Docker did not say how long the containers ran")
	}
	excess := long.ran - short.ran
	if excess >= sigtermExcess {
		return fail("with KILL_GRACE_MS=%d the container ran %v, with %d %v: %v longer, so the runtime was killed at the end of the grace: it ignores SIGTERM or takes far longer than %v to stop",
			longGrace.Milliseconds(), long.ran.Round(10*time.Millisecond), quickGrace.Milliseconds(), short.ran.Round(10*time.Millisecond),
			excess.Round(10*time.Millisecond), stopBudget)
	}
	return pass("the run time does not depend on KILL_GRACE_MS (%v with %d, %v with %d): the runtime stops on SIGTERM",
		long.ran.Round(10*time.Millisecond), longGrace.Milliseconds(), short.ran.Round(10*time.Millisecond), quickGrace.Milliseconds())
}

// functionPIDs are the host pids of the function's processes (children of
// PID 1 that run WATCHDOG_CMD) in a snapshot.
func (s *session) functionPIDs(snap *snapshot) []string {
	if snap == nil || snap.err != nil {
		return nil
	}
	var out []string
	for _, p := range snap.procs {
		if p.PPID == snap.root && s.isFunction(p.Command) {
			out = append(out, p.PID)
		}
	}
	slices.Sort(out)
	return out
}

func checkWarmSequence(s *session) verdict {
	w := s.warm()
	if v, blocked := blockedWarm(s, w); blocked {
		return v
	}
	for i, c := range w.calls {
		if !c.ok() {
			return fail("invocation %d of %d failed: %s", i+1, len(w.calls), c.describe())
		}
	}
	before, after := s.functionPIDs(w.procsReady), s.functionPIDs(w.procsSeq)
	if len(before) > 0 && !slices.Equal(before, after) {
		return fail("the runtime was restarted during %d successful invocations: its process was %v once ready, %v after them", len(w.calls), before, after)
	}
	return pass("%d invocations in a row answered by one runtime process %v", len(w.calls), before)
}

func checkWarmSurvivesFailure(s *session) verdict {
	if s.o.BadPayload == nil {
		return skip("no bad payload given (--bad-payload)")
	}
	w := s.warm()
	if v, blocked := blockedWarm(s, w); blocked {
		return v
	}
	if w.bad == nil || w.bad.result == nil || w.bad.result.Success {
		return skip("not reached: the bad payload did not fail (see RT-ERR-001)")
	}
	if !w.afterBad.ok() {
		return fail("the invocation after the failed one failed: %s", w.afterBad.describe())
	}
	before, after := s.functionPIDs(w.procsSeq), s.functionPIDs(w.procsBad)
	if len(before) > 0 && !slices.Equal(before, after) {
		return fail("the runtime was restarted after the failed invocation: its process was %v before, %v after", before, after)
	}
	return pass("the next invocation succeeded on the same runtime")
}

// describeCall names a callback that was not the watchdog's, and why.
func describeCall(c receiver.Call, id string) string {
	why := "no X-Execution-Id header"
	if h := c.Header.Get("X-Execution-Id"); h == id {
		why = "a second callback with X-Execution-Id"
	} else if h != "" {
		why = fmt.Sprintf("X-Execution-Id %q", h)
	}
	if _, err := ValidateResult(c.Body); err != nil {
		why += "; " + err.Error()
	}
	return why
}

func checkReportedOnce(s *session) verdict {
	type finding struct {
		run, id string
		calls   []receiver.Call
	}
	var found []finding
	runs := 0
	for _, p := range everyRun(s) {
		run := s.probes[p]
		if run.one != nil && run.one.id != "" {
			runs++
			if len(run.one.others) > 0 {
				found = append(found, finding{string(p), run.one.id, run.one.others})
			}
		}
		if run.warm != nil {
			for _, c := range run.warm.all() {
				runs++
				if len(c.others) > 0 {
					found = append(found, finding{"warm invocation", c.id, c.others})
				}
			}
		}
	}
	if len(found) == 0 {
		return pass("no callback but the watchdog's in %d execution(s), CALLBACK_URL set in each", runs)
	}
	f := found[0]
	return fail("%d of %d execution(s) got callbacks that were not the watchdog's; %s (%s): %d more, %s: the runtime reports results itself; leave that to the watchdog",
		len(found), runs, f.run, f.id, len(f.calls), describeCall(f.calls[0], f.id))
}
