package receiver

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"nanofaas.dev/watchdog/result"
)

// answer makes a request and returns the status and the error code of a
// {"error":{"code",...}} body ("" when there is none).
func answer(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(data, &e)
	return resp.StatusCode, e.Error.Code
}

const ok = `{"success":true,"output":{"n":1},"error":null}`

// The emulator's use: mounted on another server, the control plane's checks,
// results handed to Expect, nothing kept.
func TestControlPlaneMounted(t *testing.T) {
	var unknownSeen []string
	var logged []string
	r := New(Behaviour{OKStatus: http.StatusNoContent, MaxBody: 1024, CheckResults: true, CountOnly: true,
		Unknown: func(id string, res result.Result) int {
			unknownSeen = append(unknownSeen, id+" "+res.Status())
			if id == "late" {
				return http.StatusAccepted
			}
			return http.StatusNotFound
		},
		Log: func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) },
	})
	defer r.Close()
	mux := http.NewServeMux()
	mux.Handle(ExecutionsPath+"/", r)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	base := srv.URL + ExecutionsPath

	ran := false
	got := r.Expect("exec-1", func() { ran = true })
	if status, _ := answer(t, http.MethodPost, base+"/exec-1:complete", ok); status != http.StatusNoContent {
		t.Fatalf("expected callback answered %d, want 204", status)
	}
	c := <-got
	if res, err := c.Result(); err != nil || !ran || res.Status() != "success" || c.ExecutionID() != "exec-1" {
		t.Errorf("Expect got %+v (%v), before ran %v", res, err, ran)
	}
	// A retry of a delivered result is acknowledged, not refused.
	if status, _ := answer(t, http.MethodPost, base+"/exec-1:complete", ok); status != http.StatusNoContent {
		t.Errorf("retried delivery answered %d, want 204", status)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{http.MethodPost, "/nobody:complete", ok, http.StatusNotFound, "UNKNOWN_EXECUTION"},
		{http.MethodPost, "/late:complete", ok, http.StatusAccepted, ""},
		{http.MethodPost, "/exec-2", ok, http.StatusNotFound, "NOT_FOUND"},
		{http.MethodGet, "/exec-2:complete", "", http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED"},
		{http.MethodPost, "/exec-2:complete", `not json`, http.StatusBadRequest, "BAD_REQUEST"},
		{http.MethodPost, "/exec-2:complete", strings.Repeat("x", 2000), http.StatusRequestEntityTooLarge, "TOO_LARGE"},
	} {
		if status, code := answer(t, tc.method, base+tc.path, tc.body); status != tc.status || code != tc.code {
			t.Errorf("%s %s: answered %d %q, want %d %q", tc.method, tc.path, status, code, tc.status, tc.code)
		}
	}
	if want := []string{"nobody success", "late success"}; fmt.Sprint(unknownSeen) != fmt.Sprint(want) {
		t.Errorf("Unknown saw %v, want %v", unknownSeen, want)
	}
	if len(logged) != 5 {
		t.Errorf("logged %d refusals, want 5 (unknown, path, method, body, size): %q", len(logged), logged)
	}
	if n := len(r.Calls()); n != 0 {
		t.Errorf("CountOnly kept %d calls", n)
	}
	if n := r.Count(); n != 4 {
		t.Errorf("Count = %d, want 4 (the requests that passed the checks)", n)
	}
	if r.Port() != 0 {
		t.Errorf("Port of a mounted receiver = %d, want 0", r.Port())
	}
}

// The tests' use: failures on purpose are not delivered to Expect, the
// first success is.
func TestExpectSkipsFailedAttempts(t *testing.T) {
	r, err := Start(Behaviour{FailFirst: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := r.Expect("exec-1", nil)
	if status := post(t, r.Base+"/exec-1:complete", ok); status != http.StatusServiceUnavailable {
		t.Fatalf("first attempt answered %d, want 503", status)
	}
	select {
	case c := <-got:
		t.Fatalf("a failed attempt was handed over: %+v", c)
	default:
	}
	if status := post(t, r.Base+"/exec-1:complete", ok); status != http.StatusOK {
		t.Fatalf("second attempt answered %d, want 200", status)
	}
	if c := <-got; c.Status != http.StatusOK {
		t.Errorf("handed over a call answered %d", c.Status)
	}
	if n := len(r.Calls()); n != 2 {
		t.Errorf("kept %d calls, want 2", n)
	}
}
