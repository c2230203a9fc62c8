package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"

	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/result"
)

// checks are the RT requirements `conformance run` checks, by id. SPEC.md
// names `conformance run` among the scenarios of exactly these (a test
// keeps both in step).
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
	"RT-SIG-001":   {needs: mainRun, eval: checkStop},
	"RT-WARM-001":  {needs: mainRun, eval: checkWarmSequence},
	"RT-WARM-002":  {needs: badRun, eval: checkWarmSurvivesFailure},
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

// blockedWarm is the verdict for checks that need a ready WARM container.
func blockedWarm(w *warmRun) (verdict, bool) {
	if w.ready {
		return verdict{}, false
	}
	return skip("not reached: %s (see RT-HTTP-001)", errText(w.err)), true
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
		if !w.ready {
			return fail("the watchdog did not serve /health on WARM_PORT: %s%s", errText(w.err), logTail(w.logs))
		}
		return pass("/health answered 200 on WARM_PORT %v after the start", w.readyAfter.Round(10*time.Millisecond))
	}
	r := s.one(probeInvoke)
	if r.err != nil {
		return fail("%s", r.err)
	}
	if len(r.calls) != 1 {
		return fail("%d results were delivered for the invocation, want exactly 1 (container exit code %d)%s", len(r.calls), r.exitCode, logTail(r.logs))
	}
	if want := receiver.ExecutionsPath + "/" + r.id + ":complete"; r.calls[0].Path != want {
		return fail("the result went to %s, want %s", r.calls[0].Path, want)
	}
	if r.exitCode != 0 {
		return fail("one result was delivered, but the container exited with code %d, want 0%s", r.exitCode, logTail(r.logs))
	}
	return pass("one result delivered to the callback, container exit code 0")
}

func checkDeclaredMode(s *session) verdict {
	env := s.img.Env
	mode, set := env["EXECUTION_MODE"]
	mode = strings.ToUpper(strings.TrimSpace(mode))
	warm := strings.EqualFold(strings.TrimSpace(env["WARM"]), "true")
	if !set || mode == "" {
		return fail("the image does not set EXECUTION_MODE (the watchdog would run it as HTTP); add ENV EXECUTION_MODE=%s", s.mode)
	}
	if s.mode == "WARM" {
		if mode == "WARM" || (warm && mode == "HTTP") {
			return pass("EXECUTION_MODE=%s%s", mode, map[bool]string{true: " WARM=true", false: ""}[warm])
		}
		return fail("a WARM image sets EXECUTION_MODE=WARM (or WARM=true with EXECUTION_MODE=HTTP); this one sets EXECUTION_MODE=%s WARM=%q", mode, env["WARM"])
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

// events returns the watchdog's log of the main run.
func mainEvents(s *session) ([]logEvent, []byte, error) {
	if s.mode == "WARM" {
		w := s.warm()
		return w.events, w.logs, nil
	}
	r := s.one(probeInvoke)
	if r.err != nil && len(r.logs) == 0 {
		return nil, nil, r.err
	}
	return r.events, r.logs, nil
}

func checkPID1(s *session) verdict {
	events, logs, err := mainEvents(s)
	if err != nil {
		return fail("%s", err)
	}
	e, ok := find(events, "watchdog starting")
	if !ok {
		return fail("the log has no \"watchdog starting\" line at LOG_LEVEL=debug: is the ENTRYPOINT the watchdog?%s", logTail(logs))
	}
	if pid1, _ := e.Fields["pid1"].(bool); !pid1 {
		return fail("the watchdog is not PID 1 (\"pid1\":false): use an exec-form ENTRYPOINT [\"/usr/local/bin/watchdog\"] with no shell or wrapper in front")
	}
	return pass("the watchdog runs as PID 1")
}

func checkHealth(s *session) verdict {
	if s.mode == "WARM" {
		w := s.warm()
		if !w.ready {
			return fail("/health did not answer 200: %s", errText(w.err))
		}
		if ms, ok := firstNumber(w.events, "runtime ready", "startup_ms"); ok {
			return pass("the runtime was ready %.0fms after it started", ms)
		}
		return pass("/health answered 200 %v after the start", w.readyAfter.Round(10*time.Millisecond))
	}
	r := s.one(probeInvoke)
	switch code := r.resultCode(); {
	case r.err != nil:
		return fail("%s", r.err)
	case code == "STARTUP_ERROR" || code == "SPAWN_ERROR" || code == "NO RESULT":
		return fail("%s", r.describe())
	}
	if e, ok := find(r.events, "runtime ready"); ok {
		if ms, ok := number(e, "ms"); ok {
			return pass("HEALTH_URL answered 2xx %.0fms after the start", ms)
		}
	}
	return pass("the runtime became ready and was invoked")
}

func checkInvoke(s *session) verdict {
	if s.mode == "WARM" {
		w := s.warm()
		if v, blocked := blockedWarm(w); blocked {
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
	if (s.mode == "WARM" && !s.warm().ready) || (s.mode != "WARM" && s.one(probeInvoke).blocked()) {
		return skip("not reached: the runtime does not start on its own port either (see RT-HTTP-001)")
	}
	if r.err == nil && r.resultCode() == "STARTUP_ERROR" {
		return fail("with RUNTIME_URL=%s (PORT set to its port) the runtime never became ready: it does not listen on PORT; %s", port, r.describe())
	}
	return fail("with RUNTIME_URL=%s: %s", port, r.describe())
}

func checkProtocolSuccess(s *session) verdict {
	r := s.one(probeInvoke)
	switch {
	case r.err != nil:
		return fail("%s", r.err)
	case r.result == nil:
		return fail("%s", r.describe())
	case r.result.Success:
		if s.mode == "FILE" {
			return pass("wrote one JSON document to OUTPUT_FILE and exited 0")
		}
		return pass("wrote one JSON document on stdout and exited 0")
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
	if main := s.one(probeInvoke); main.result == nil || !main.result.Success {
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

// DiffJSON compares two JSON documents as values; "" when they are equal.
func DiffJSON(want, got []byte) (string, error) {
	w, err := DecodeJSON(want)
	if err != nil {
		return "", fmt.Errorf("the expected output: %w", err)
	}
	g, err := DecodeJSON(got)
	if err != nil {
		return "", fmt.Errorf("the output: %w", err)
	}
	return cmp.Diff(w, g), nil
}

func checkOutput(s *session) verdict {
	if s.o.Expect == nil {
		return skip("no expected output given (--expect)")
	}
	var outputs []json.RawMessage
	if s.mode == "WARM" {
		w := s.warm()
		if v, blocked := blockedWarm(w); blocked {
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
			return fail("output %d differs from the expected one (-want +got): %s", i+1, oneLine(diff, 600))
		}
	}
	return pass("the output is the expected one")
}

// badOutcome is the result the bad payload got.
func badOutcome(s *session) (res *result.Result, status int, blocked string, err error) {
	if s.mode == "WARM" {
		w := s.warm()
		if !w.ready {
			return nil, 0, errText(w.err), nil
		}
		if w.bad == nil || w.bad.err != nil {
			return nil, 0, "", fmt.Errorf("%s", w.bad.describe())
		}
		return w.bad.result, w.bad.status, "", nil
	}
	r := s.one(probeBad)
	if r.err != nil {
		return nil, 0, "", r.err
	}
	if c := r.resultCode(); c == "STARTUP_ERROR" || c == "SPAWN_ERROR" {
		return nil, 0, r.describe(), nil
	}
	if r.result == nil {
		return nil, 0, "", fmt.Errorf("%s", r.describe())
	}
	if r.exitCode != 0 {
		return nil, 0, "", fmt.Errorf("the container exited with code %d after a function error, want 0", r.exitCode)
	}
	return r.result, 0, "", nil
}

func checkBadPayload(s *session) verdict {
	if s.o.BadPayload == nil {
		return skip("no bad payload given (--bad-payload)")
	}
	res, status, blocked, err := badOutcome(s)
	switch {
	case blocked != "":
		return skip("not reached: %s", blocked)
	case err != nil:
		return fail("%v", err)
	case res.Success:
		return fail("the bad payload succeeded with output %s", oneLine(string(res.Output), 200))
	case res.ErrorCode() == result.Timeout:
		return fail("the function hung on the bad payload until TIMEOUT_MS: %s", oneLine(res.Error.Message, 200))
	case res.ErrorCode() != result.FunctionError:
		return fail("%s: %s", res.ErrorCode(), oneLine(res.Error.Message, 300))
	}
	msg := res.Error.Message
	if s.mode == "HTTP" || s.mode == "WARM" {
		if !strings.HasPrefix(msg, "runtime answered HTTP") {
			return fail("the runtime did not answer with an error status: %s", oneLine(msg, 300))
		}
		if s.mode == "WARM" && status != http.StatusInternalServerError {
			return fail("the watchdog answered HTTP %d, want 500 for a FUNCTION_ERROR", status)
		}
	}
	return pass("FUNCTION_ERROR: %s", oneLine(readable(msg), 160))
}

func checkExplained(s *session) verdict {
	if s.o.BadPayload == nil {
		return skip("no bad payload given (--bad-payload)")
	}
	res, _, blocked, err := badOutcome(s)
	switch {
	case blocked != "":
		return skip("not reached: %s", blocked)
	case err != nil:
		return fail("%v", err)
	case res.Success || res.Error == nil:
		return skip("not reached: the bad payload did not fail (see RT-ERR-001)")
	}
	msg := res.Error.Message
	if s.mode == "HTTP" || s.mode == "WARM" {
		if _, body, ok := strings.Cut(readable(msg), ": "); ok && strings.HasPrefix(msg, "runtime answered HTTP") && strings.TrimSpace(body) != "" {
			return pass("the error answer says: %s", oneLine(body, 160))
		}
		return fail("the error answer has an empty body: %s", oneLine(msg, 200))
	}
	if _, tail, ok := strings.Cut(msg, "; stderr: "); ok && strings.TrimSpace(tail) != "" {
		return pass("stderr says: %s", oneLine(tail, 120))
	}
	return fail("the function wrote nothing on stderr: %s", oneLine(msg, 200))
}

func checkStop(s *session) verdict {
	if s.mode == "WARM" {
		w := s.warm()
		if v, blocked := blockedWarm(w); blocked {
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
	r := s.one(probeInvoke)
	ready, ok1 := find(r.events, "runtime ready")
	finished, ok2 := find(r.events, "invocation finished")
	if !ok1 || !ok2 || r.blocked() {
		return skip("not reached: the runtime was not invoked (see RT-HTTP-001)")
	}
	invokeMs, _ := number(finished, "duration_ms")
	stop := finished.Time.Sub(ready.Time) - time.Duration(invokeMs)*time.Millisecond
	if stop < 0 {
		stop = 0
	}
	if stop >= stopBudget {
		return fail("the runtime took %v to stop after SIGTERM (KILL_GRACE_MS=%d), want under %v: it ignores SIGTERM or is slow to stop",
			stop.Round(10*time.Millisecond), measureGrace.Milliseconds(), stopBudget)
	}
	return pass("the runtime stopped %v after SIGTERM", stop.Round(10*time.Millisecond))
}

func checkWarmSequence(s *session) verdict {
	w := s.warm()
	if v, blocked := blockedWarm(w); blocked {
		return v
	}
	for i, c := range w.calls {
		if !c.ok() {
			return fail("invocation %d of %d failed: %s", i+1, len(w.calls), c.describe())
		}
	}
	n, which := restartsBetween(w.restartsReady, w.restartsSeq)
	if n > 0 {
		return fail("the runtime was restarted during %d successful invocations: watchdog_runtime_restarts_total %s", len(w.calls), which)
	}
	if pids := distinct(w.events, "runtime ready", "pid"); n < 0 && pids > 1 {
		return fail("%d runtime processes became ready: the runtime was restarted", pids)
	}
	return pass("%d invocations in a row answered by one runtime", len(w.calls))
}

func checkWarmSurvivesFailure(s *session) verdict {
	if s.o.BadPayload == nil {
		return skip("no bad payload given (--bad-payload)")
	}
	w := s.warm()
	if v, blocked := blockedWarm(w); blocked {
		return v
	}
	if w.bad == nil || w.bad.result == nil || w.bad.result.Success {
		return skip("not reached: the bad payload did not fail (see RT-ERR-001)")
	}
	if !w.afterBad.ok() {
		return fail("the invocation after the failed one failed: %s", w.afterBad.describe())
	}
	if n, which := restartsBetween(w.restartsSeq, w.restartsBad); n > 0 {
		return fail("the runtime was restarted after the failed invocation: watchdog_runtime_restarts_total %s", which)
	}
	return pass("the next invocation succeeded on the same runtime")
}

// readable unquotes the runtime's answer that the watchdog quotes in
// "runtime answered HTTP 400: \"...\"", for a reason a person reads.
func readable(msg string) string {
	head, body, ok := strings.Cut(msg, ": ")
	if !ok || !strings.HasPrefix(head, "runtime answered HTTP") {
		return msg
	}
	if u, err := strconv.Unquote(body); err == nil {
		return head + ": " + u
	}
	return msg
}
