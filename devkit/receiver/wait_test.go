package receiver

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"nanofaas.dev/watchdog/result"
)

// post posts body and returns the status; it may run in another goroutine.
func post(t *testing.T, url, body string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestWaitFor(t *testing.T) {
	r, err := Start(Behaviour{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if want := "http://127.0.0.1:" + strconv.Itoa(r.Port()) + ExecutionsPath; r.Base != want || r.URL("127.0.0.1") != want {
		t.Errorf("Base %q, URL(127.0.0.1) %q, want %q", r.Base, r.URL("127.0.0.1"), want)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		post(t, r.Base+"/other:complete", `{"success":true,"output":2,"error":null}`)
		post(t, r.Base+"/exec-1:complete", `{"success":false,"output":null,"error":{"code":"TIMEOUT","message":"late"},"duration_ms":7}`)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	call, err := r.WaitFor(ctx, "exec-1")
	if err != nil {
		t.Fatal(err)
	}
	if call.ExecutionID() != "exec-1" || len(r.For("exec-1")) != 1 || len(r.For("other")) != 1 {
		t.Errorf("call %q: id %q; For(exec-1) %d, For(other) %d", call.Path, call.ExecutionID(), len(r.For("exec-1")), len(r.For("other")))
	}
	res, err := call.Result()
	if err != nil || res.ErrorCode() != result.Timeout || res.DurationMs != 7 {
		t.Errorf("Result() = %+v, %v; want the TIMEOUT", res, err)
	}

	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := r.WaitFor(short, "exec-2"); err == nil {
		t.Error("WaitFor(exec-2) succeeded; nothing was posted for it")
	}
}

// TestOnlyCallbacksAndBefore: OnlyCallbacks refuses what is not a callback
// without recording it; Before runs before the callback is answered.
func TestOnlyCallbacksAndBefore(t *testing.T) {
	seen := make(chan string, 4)
	r, err := Start(Behaviour{OnlyCallbacks: true, Before: func(c Call) {
		seen <- c.ExecutionID()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	base := "http://127.0.0.1:" + strconv.Itoa(r.Port())
	if got := post(t, base+"/elsewhere/x:complete", `{}`); got != http.StatusNotFound {
		t.Errorf("POST outside %s: %d, want 404", ExecutionsPath, got)
	}
	resp, err := http.Get(r.Base + "/x:complete")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET: %d, want 404", resp.StatusCode)
	}
	if n := len(r.Calls()); n != 0 {
		t.Errorf("%d calls recorded, want 0 (refused requests are not recorded)", n)
	}
	if got := post(t, r.Base+"/exec-3:complete", `{"success":true,"output":1,"error":null}`); got != http.StatusOK {
		t.Errorf("callback: %d, want 200", got)
	}
	select {
	case id := <-seen:
		if id != "exec-3" {
			t.Errorf("Before saw %q, want exec-3", id)
		}
	default:
		t.Error("Before did not run before the answer")
	}
}
