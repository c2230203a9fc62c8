package emulator

import (
	"fmt"
	"strings"
	"testing"
)

func lines(t *testing.T, h *hub, id string) []string {
	t.Helper()
	r, ok := h.record(id)
	if !ok {
		t.Fatalf("no record of %s", id)
	}
	var out []string
	for _, l := range r.lines {
		out = append(out, l.Line)
	}
	return out
}

// TestHubFilesLogLines checks which execution each log line goes to.
func TestHubFilesLogLines(t *testing.T) {
	h := newHub(10, func(string) (any, bool) { return nil, false })
	h.track("exec-a", "warm", []byte(`{}`))
	h.track("exec-b", "warm", []byte(`{}`))
	h.track("exec-c", "oneshot", []byte(`{}`))

	// A one-shot execution's lines carry its id as their prefix.
	h.logLine("[exec-c] hello <b>")
	// Lines without a prefix, or of nobody, are nobody's.
	h.logLine("emulator: something")
	h.logLine("[exec-unknown] lost")
	// A warm watchdog's line goes to the execution it names, in text or JSON.
	h.logLine(`[warm] time=… level=INFO msg="invocation finished" execution_id=exec-b success=true`)
	h.logLine(`[warm] {"level":"INFO","msg":"callback delivered","execution_id":"exec-a"}`)
	// Else to the one execution of the function running.
	h.logLine("[warm] runtime: no id here (nothing runs)")
	h.execution("exec-a", ExecRunning, nil)
	h.logLine("[warm] runtime: while a runs")
	h.execution("exec-b", ExecRunning, nil)
	h.logLine("[warm] runtime: while a and b run")
	h.execution("exec-a", ExecSuccess, nil)
	h.logLine("[warm] runtime: while b runs")

	if got, want := lines(t, h, "exec-c"), []string{"hello <b>"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("exec-c: %q, want %q", got, want)
	}
	if got := lines(t, h, "exec-a"); len(got) != 2 || !strings.Contains(got[0], "callback delivered") || got[1] != "runtime: while a runs" {
		t.Errorf("exec-a: %q, want its callback line and the line while it ran", got)
	}
	if got := lines(t, h, "exec-b"); len(got) != 2 || !strings.Contains(got[0], "invocation finished") || got[1] != "runtime: while b runs" {
		t.Errorf("exec-b: %q, want its invocation line and the line while it ran alone", got)
	}
}

// TestHubBounds checks that the hub keeps the last executions only, a bounded
// number of lines per execution, and drops a subscriber that does not read.
func TestHubBounds(t *testing.T) {
	h := newHub(2, func(string) (any, bool) { return nil, false })
	h.track("exec-1", "f", nil)
	h.track("exec-2", "f", nil)
	h.track("exec-3", "f", nil)
	if _, ok := h.record("exec-1"); ok {
		t.Errorf("exec-1 is still kept beyond the last 2")
	}
	for i := 0; i < maxExecLogLines+5; i++ {
		h.logLine(fmt.Sprintf("[exec-3] line %d", i))
	}
	r, _ := h.record("exec-3")
	if len(r.lines) != maxExecLogLines || r.dropped != 5 {
		t.Errorf("exec-3 kept %d lines and dropped %d, want %d and 5", len(r.lines), r.dropped, maxExecLogLines)
	}

	events, cancel := h.subscribe()
	defer cancel()
	for i := 0; i < subscriberBuffer+1; i++ {
		h.execution("exec-2", ExecRunning, map[string]int{"i": i})
	}
	n := 0
	for range events {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("a subscriber that did not read got %d events and then its channel closed, want %d", n, subscriberBuffer)
	}

	fresh, cancelFresh := h.subscribe()
	defer cancelFresh()
	h.functionRemoved("gone")
	if ev := <-fresh; ev.name != "function-removed" || string(ev.data) != `{"name":"gone"}` {
		t.Errorf("functionRemoved: event %s %s", ev.name, ev.data)
	}

	h.close()
	late, _ := h.subscribe()
	if _, open := <-late; open {
		t.Errorf("a subscription after close is open")
	}
}
