package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Limits of what the event hub keeps for the API.
const (
	// maxExecLogLines is how many log lines one execution keeps; later lines
	// are counted in "dropped".
	maxExecLogLines = 2000
	// subscriberBuffer is how many events a slow GET /v1/events client may
	// lag behind before it is disconnected (its EventSource reconnects and
	// the page reloads the lists).
	subscriberBuffer = 512
	// functionEventDelay coalesces a burst of changes of one function
	// (a restart logs several lines) into one "function" event.
	functionEventDelay = 100 * time.Millisecond
	// keepAliveEvery is how often an idle event stream gets a comment line,
	// so that proxies and browsers keep it open.
	keepAliveEvery = 15 * time.Second
)

// sseEvent is one server-sent event: its name and its JSON data (one line).
type sseEvent struct {
	name string
	data []byte
}

// logLine is one log line of an execution, as GET /v1/executions/{id}/logs
// and the "log" event show it.
type logLine struct {
	Time time.Time `json:"time"`
	Line string    `json:"line"`
}

// execRecord is what the hub keeps of one execution beyond the API's view:
// its input and its log lines.
type execRecord struct {
	function string
	input    json.RawMessage
	lines    []logLine
	dropped  int
	running  bool
}

// hub fans the emulator's events out to the GET /v1/events subscribers and
// keeps each execution's input and log lines, for the last keep executions.
type hub struct {
	keep int
	// functionView returns a function's API view, for "function" events.
	functionView func(name string) (any, bool)

	mu      sync.Mutex
	subs    map[chan sseEvent]struct{}
	records map[string]*execRecord
	order   []string
	// pending marks the functions with a "function" event scheduled.
	pending map[string]bool
	closed  bool
}

func newHub(keep int, functionView func(name string) (any, bool)) *hub {
	return &hub{keep: keep, functionView: functionView, subs: map[chan sseEvent]struct{}{},
		records: map[string]*execRecord{}, pending: map[string]bool{}}
}

// subscribe returns a channel of every event from now on, and the function
// that ends the subscription. The channel is closed when the subscriber falls
// too far behind or the hub closes.
func (h *hub) subscribe() (<-chan sseEvent, func()) {
	ch := make(chan sseEvent, subscriberBuffer)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	h.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// close ends every subscription: the event streams end, so that the HTTP
// server can shut down.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// broadcastLocked sends an event to every subscriber; one that is too far
// behind is dropped rather than waited for.
func (h *hub) broadcastLocked(name string, v any) {
	if len(h.subs) == 0 {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		data, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("cannot encode the %s event: %v", name, err)})
	}
	ev := sseEvent{name: name, data: data}
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// track starts the record of a new execution, with its input.
func (h *hub) track(id, function string, input json.RawMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.records[id]; ok {
		return
	}
	h.records[id] = &execRecord{function: function, input: input}
	h.order = append(h.order, id)
	if excess := len(h.order) - h.keep; excess > 0 {
		for _, old := range h.order[:excess] {
			delete(h.records, old)
		}
		h.order = append([]string(nil), h.order[excess:]...)
	}
}

// execution publishes an execution's new state: view is its API view.
func (h *hub) execution(id, status string, view any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.records[id]; r != nil {
		r.running = status == ExecRunning
	}
	h.broadcastLocked("execution", view)
}

// functionChanged schedules a "function" event with the function's view,
// coalescing the changes of the next functionEventDelay.
func (h *hub) functionChanged(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending[name] || h.closed || len(h.subs) == 0 {
		return
	}
	h.pending[name] = true
	time.AfterFunc(functionEventDelay, func() {
		v, ok := h.functionView(name)
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.pending, name)
		if ok {
			h.broadcastLocked("function", v)
		}
	})
}

// functionRemoved tells the subscribers that a function is no longer
// registered ("function-removed" event, data {"name": …}).
func (h *hub) functionRemoved(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broadcastLocked("function-removed", map[string]string{"name": name})
}

// logEvent is the data of a "log" event.
type logEvent struct {
	ExecutionID string `json:"executionId"`
	Function    string `json:"function"`
	// Index is the line's place in the execution's log, from 0, as in
	// GET /v1/executions/{id}/logs.
	Index int       `json:"index"`
	Time  time.Time `json:"time"`
	Line  string    `json:"line"`
}

// execIDInLine finds the execution id the watchdog names in its own log
// lines, in text (execution_id=…) or JSON ("execution_id":"…") format.
var execIDInLine = regexp.MustCompile(`"?execution_id"?[=:]"?([A-Za-z0-9._:-]+)`)

// logLine files one log line of the emulator's log. A line of an execution
// ("[exec-…] …") goes to that execution; a line of a warm function's
// watchdog ("[name] …") goes to the execution it names, or else to the one
// execution of that function running, and tells the subscribers that the
// function may have changed (a start, a restart, its health).
func (h *hub) logLine(line string) {
	rest, ok := strings.CutPrefix(line, "[")
	if !ok {
		return
	}
	tag, text, ok := strings.Cut(rest, "] ")
	if !ok {
		return
	}
	now := time.Now()
	h.mu.Lock()
	id := ""
	if _, ok := h.records[tag]; ok {
		id = tag
	} else {
		function := tag
		if m := execIDInLine.FindStringSubmatch(text); m != nil {
			if r := h.records[m[1]]; r != nil && r.function == function {
				id = m[1]
			}
		}
		if id == "" {
			for i := len(h.order) - 1; i >= 0; i-- {
				if r := h.records[h.order[i]]; r.running && r.function == function {
					if id != "" {
						// Two run at once: the line cannot be told apart.
						id = ""
						break
					}
					id = h.order[i]
				}
			}
		}
		h.mu.Unlock()
		h.functionChanged(function)
		h.mu.Lock()
	}
	defer h.mu.Unlock()
	r := h.records[id]
	if r == nil {
		return
	}
	if len(r.lines) >= maxExecLogLines {
		r.dropped++
		return
	}
	r.lines = append(r.lines, logLine{Time: now, Line: text})
	h.broadcastLocked("log", logEvent{ExecutionID: id, Function: r.function, Index: len(r.lines) - 1, Time: now, Line: text})
}

// record returns a copy of an execution's record.
func (h *hub) record(id string) (execRecord, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.records[id]
	if r == nil {
		return execRecord{}, false
	}
	c := *r
	c.lines = append([]logLine(nil), r.lines...)
	return c, true
}

// logTee passes the emulator's log on to out, and every line of it to the
// hub.
type logTee struct {
	out io.Writer
	hub *hub

	mu  sync.Mutex
	buf []byte
}

func (t *logTee) Write(p []byte) (int, error) {
	n, err := t.out.Write(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	for {
		i := bytes.IndexByte(t.buf, '\n')
		if i < 0 {
			break
		}
		t.hub.logLine(string(t.buf[:i]))
		t.buf = t.buf[i+1:]
	}
	if len(t.buf) > maxLogLine {
		t.hub.logLine(string(t.buf))
		t.buf = nil
	}
	if len(t.buf) == 0 {
		t.buf = nil
	}
	return n, err
}

// handleEvents is GET /v1/events: a text/event-stream of "execution" (an
// execution's view, at each change of state), "log" (one log line of an
// execution), "function" (a function's view, when its watchdog changes) and
// "function-removed" events, until the client goes away or the emulator
// stops.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		apiError(w, http.StatusInternalServerError, "STREAMING_UNSUPPORTED", "this connection cannot stream events")
		return
	}
	events, cancel := s.events.subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// retry: how long the browser waits before it reconnects.
	if _, err := io.WriteString(w, "retry: 2000\n: connected\n\n"); err != nil {
		return
	}
	fl.Flush()
	tick := time.NewTicker(keepAliveEvery)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data); err != nil {
				return
			}
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
		fl.Flush()
	}
}

// handleExecutionLogs is GET /v1/executions/{id}/logs: the log lines of one
// execution (watchdog and function), oldest first.
func (s *Server) handleExecutionLogs(w http.ResponseWriter, r *http.Request, id string) {
	rec, ok := s.events.record(id)
	if !ok {
		apiError(w, http.StatusNotFound, "EXECUTION_NOT_FOUND", "no execution %q (the history keeps the last %d)", id, s.opts.History)
		return
	}
	lines := rec.lines
	if lines == nil {
		lines = []logLine{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"executionId": id, "function": rec.function, "lines": lines, "dropped": rec.dropped})
}

// handleExecutionInput is GET /v1/executions/{id}/input: the payload the
// execution was invoked with, as JSON.
func (s *Server) handleExecutionInput(w http.ResponseWriter, r *http.Request, id string) {
	rec, ok := s.events.record(id)
	if !ok {
		apiError(w, http.StatusNotFound, "EXECUTION_NOT_FOUND", "no execution %q (the history keeps the last %d)", id, s.opts.History)
		return
	}
	input := rec.input
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(input)
	_, _ = io.WriteString(w, "\n")
}

// publish tells the event subscribers that an execution changed state.
func (s *Server) publish(ex *Execution) {
	s.mu.Lock()
	status := ex.Status
	e := s.functions[ex.Function]
	s.mu.Unlock()
	s.events.execution(ex.ID, status, s.view(ex))
	if e != nil && e.inst != nil {
		s.events.functionChanged(ex.Function)
	}
}

// publishStart records a new execution's input and publishes it.
func (s *Server) publishStart(ex *Execution, input json.RawMessage) {
	s.events.track(ex.ID, ex.Function, input)
	s.publish(ex)
}

// functionSnapshot is a function's API view, for the "function" event.
func (s *Server) functionSnapshot(name string) (any, bool) {
	s.mu.Lock()
	e := s.functions[name]
	s.mu.Unlock()
	if e == nil {
		return nil, false
	}
	return s.functionResponse(e), true
}
