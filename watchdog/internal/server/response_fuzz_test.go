package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"nanofaas.dev/watchdog/result"
)

// FuzzResponseBodies checks the hand-written JSON encoders of the answers
// (the fast path skips encoding/json for plain text): whatever the execution
// id, error message or output, every body is valid JSON and carries the
// strings back exactly as encoding/json would (invalid UTF-8 as U+FFFD).
func FuzzResponseBodies(f *testing.F) {
	f.Add("exec-1", "boom", `{"a":1}`)
	f.Add(`quo"te\`, "new\nline\t\x01", `"<html>&"`)
	f.Add("bad\xffutf8", "\u2028\u2029", `[]`)
	f.Fuzz(func(t *testing.T, id, message, output string) {
		// What encoding/json makes of s: the reference for the fast path.
		valid := func(s string) string {
			var back string
			b, _ := json.Marshal(s)
			_ = json.Unmarshal(b, &back)
			return back
		}

		var e struct {
			Error struct{ Code, Message string }
		}
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest(http.MethodPost, "/invoke", nil), 400, CodeBadRequest, message)
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Message != valid(message) || e.Error.Code != CodeBadRequest {
			t.Fatalf("error body %q: %v", rec.Body.Bytes(), err)
		}

		res := result.Failure(result.FunctionError, "%s", message)
		if json.Valid([]byte(output)) {
			res = result.Success(json.RawMessage(output))
		}
		var back struct {
			ExecutionID string `json:"execution_id"`
			Success     bool   `json:"success"`
			Error       *struct{ Code, Message string }
		}
		b := resultBody(id, &res)
		if err := json.Unmarshal(b, &back); err != nil || back.ExecutionID != valid(id) || back.Success != res.Success {
			t.Fatalf("result body %q: %v", b, err)
		}
		if !res.Success && (back.Error == nil || back.Error.Message != valid(message)) {
			t.Fatalf("result body %q lost the message", b)
		}

		var h struct {
			Status string
			Error  struct{ Code, Message string }
		}
		hb := healthBody(id, &result.Error{Code: result.StartupError, Message: message}, 3)
		if err := json.Unmarshal(hb, &h); err != nil || h.Status != valid(id) || h.Error.Message != valid(message) {
			t.Fatalf("health body %q: %v", hb, err)
		}
	})
}
