// Package receiver is the control plane's callback endpoint: a real HTTP
// receiver of the results watchdogs post to
// CALLBACK_URL/{executionId}:complete. The emulator and the conformance CLI
// ship it; the tests, the soak run and the benchmark use it too.
//
// It hands each execution's result to whoever Expects its id, records every
// request (unless told to only count them), can check what arrives as the
// control plane does (CheckResults, Unknown), and can misbehave on purpose
// (fail, reset the connection, hang) so that delivery rules can be checked
// end to end.
package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"nanofaas.dev/watchdog/result"
)

// Call is one request the receiver got.
type Call struct {
	Path   string
	Header http.Header
	Body   []byte
	// Status is what the receiver answered (0 when it reset or hung).
	Status int
	// At is when the request arrived.
	At time.Time

	// res is the decoded body, when CheckResults decoded it.
	res *result.Result
}

// Behaviour says how the receiver answers.
type Behaviour struct {
	// FailFirst answers the first FailFirst requests with a failure; -1 fails all.
	FailFirst int
	// FailStatus is the failure status (default 503).
	FailStatus int
	// Reset closes the connection instead of answering a failure.
	Reset bool
	// Hang never answers a failure (until the receiver closes).
	Hang bool
	// Listen is the address Start listens on (default 127.0.0.1:0).
	Listen string
	// Statuses, when not empty, answers request n with Statuses[n] (0:
	// reset the connection), and OKStatus once they run out; it replaces
	// FailFirst and FailStatus.
	Statuses []int
	// Delay holds every answer back this long (or until the client gives up).
	Delay time.Duration
	// Location is sent with every answer that is not 2xx (for redirects).
	Location string
	// OnlyCallbacks answers 404 to, and does not record, every request but
	// a POST under ExecutionsPath (see wait.go).
	OnlyCallbacks bool
	// Before, when set, runs for every recorded request before it is
	// answered; the sender waits for the answer meanwhile.
	Before func(Call)

	// OKStatus is the answer to a request that does not fail (default 200;
	// the nanofaas control plane answers 204).
	OKStatus int
	// MaxBody is the largest body taken (default 256 MiB); a larger one is
	// answered 413.
	MaxBody int64
	// CheckResults checks each request as the control plane does: the path
	// must be ExecutionsPath/{id}:complete (404), the method POST (405) and
	// the body a result (400). A refusal is answered
	// {"error":{"code","message"}} and logged with Log.
	CheckResults bool
	// Unknown, when set, answers a callback for an execution id that no
	// Expect waits for and that was not delivered recently (a retry of a
	// delivered result is acknowledged): it returns the status to answer,
	// and 404 refuses it with UNKNOWN_EXECUTION. When nil, such callbacks
	// are answered as the other fields say. With CheckResults, res is the
	// decoded body; without, the zero Result.
	Unknown func(id string, res result.Result) int
	// CountOnly keeps no requests: Calls, Delivered, For and the waits on
	// them see nothing; Count counts, and Expect still hands results over.
	// For long runs (the emulator, soak, benchmarks), whose memory must not
	// grow with the number of callbacks.
	CountOnly bool
	// Log, when set, receives one line for every request refused.
	Log func(format string, args ...any)
}

// maxRecent bounds how many delivered ids are remembered to acknowledge
// retries (see Behaviour.Unknown).
const maxRecent = 10000

// Receiver is a callback receiver: an http.Handler, listening on a port of
// its own when made by Start.
type Receiver struct {
	// Base is the URL to use as CALLBACK_URL (set by Start).
	Base string
	b    Behaviour
	srv  *http.Server
	ln   net.Listener

	mu      sync.Mutex
	calls   []Call
	count   int
	waiting map[string]*pending
	recent  map[string]bool
	changed chan struct{}
	closing chan struct{}
	closed  sync.Once
}

// pending is an Expect waiting for its result.
type pending struct {
	ch     chan Call
	before func()
}

// New returns a receiver that serves no port of its own: mount it on a
// server (its path is ExecutionsPath + "/{id}:complete"). Close releases
// requests that Hang or Delay holds.
func New(b Behaviour) *Receiver {
	if b.FailStatus == 0 {
		b.FailStatus = http.StatusServiceUnavailable
	}
	if b.OKStatus == 0 {
		b.OKStatus = http.StatusOK
	}
	if b.MaxBody <= 0 {
		b.MaxBody = 256 << 20
	}
	return &Receiver{b: b, waiting: map[string]*pending{}, recent: map[string]bool{},
		changed: make(chan struct{}), closing: make(chan struct{})}
}

// Start starts a receiver listening on Behaviour.Listen.
func Start(b Behaviour) (*Receiver, error) {
	if b.Listen == "" {
		b.Listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", b.Listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for callbacks on %s: %w", b.Listen, err)
	}
	r := New(b)
	r.ln = ln
	r.Base = r.URL("127.0.0.1")
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Port is the TCP port the receiver listens on (0 for one made by New).
func (r *Receiver) Port() int {
	if r.ln == nil {
		return 0
	}
	return r.ln.Addr().(*net.TCPAddr).Port
}

// Expect registers an execution id: the channel gets the first result
// delivered (answered 2xx) for it. before, when not nil, runs when that
// result arrives, before the sender is answered (while it still runs).
func (r *Receiver) Expect(id string, before func()) <-chan Call {
	p := &pending{ch: make(chan Call, 1), before: before}
	r.mu.Lock()
	r.waiting[id] = p
	r.mu.Unlock()
	return p.ch
}

// Forget stops expecting id.
func (r *Receiver) Forget(id string) {
	r.mu.Lock()
	delete(r.waiting, id)
	r.mu.Unlock()
}

// ServeHTTP records the request and answers it as the behaviour says.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	if r.refuses(w, req) {
		return
	}
	call := Call{Path: req.URL.Path, Header: req.Header.Clone(), At: at}
	if r.b.CheckResults {
		if _, ok := callbackID(call.Path); !ok {
			r.refuse(w, http.StatusNotFound, "NOT_FOUND", "callbacks go to POST "+ExecutionsPath+"/{executionId}:complete")
			return
		}
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			r.refuse(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use POST")
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, r.b.MaxBody+1))
	if err != nil && r.b.CheckResults {
		r.refuse(w, http.StatusBadRequest, "BAD_REQUEST", "cannot read the body: "+err.Error())
		return
	}
	if int64(len(body)) > r.b.MaxBody {
		r.refuse(w, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("a result is at most %d bytes", r.b.MaxBody))
		return
	}
	call.Body = body
	id := call.ExecutionID()
	var res result.Result
	if r.b.CheckResults {
		if res, err = result.Decode(body); err != nil {
			r.refuse(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("callback for %s: the body must be {\"success\":bool,\"output\":...,\"error\":null|{\"code\",\"message\"}}: %v", id, err))
			return
		}
		call.res = &res
	}

	fail, failStatus, reset := r.failure()
	var p *pending
	unknownStatus := 0
	r.mu.Lock()
	if !fail {
		p = r.waiting[id]
		switch {
		case p != nil:
			delete(r.waiting, id)
			if len(r.recent) >= maxRecent {
				r.recent = map[string]bool{}
			}
			r.recent[id] = true
		case r.b.Unknown != nil && !r.recent[id]:
			unknownStatus = -1 // decided below, outside the lock
		}
	}
	r.mu.Unlock()
	if unknownStatus < 0 {
		unknownStatus = r.b.Unknown(id, res)
	}

	switch {
	case fail && !reset && !r.b.Hang:
		call.Status = failStatus
	case !fail && unknownStatus != 0:
		call.Status = unknownStatus
	case !fail:
		call.Status = r.b.OKStatus
	}
	r.record(call)

	if r.b.Before != nil {
		r.b.Before(call)
	}
	if p != nil {
		if p.before != nil {
			p.before()
		}
		p.ch <- call
	}
	if r.b.Delay > 0 {
		select {
		case <-time.After(r.b.Delay):
		case <-req.Context().Done():
		case <-r.closing:
		}
	}
	switch {
	case !fail && unknownStatus == http.StatusNotFound:
		r.logf("callback for unknown execution %s (status %s) answered 404", id, res.Status())
		writeError(w, http.StatusNotFound, "UNKNOWN_EXECUTION", "no execution "+id+" is waiting for a result")
	case !fail:
		w.WriteHeader(call.Status)
	case r.b.Hang:
		select {
		case <-req.Context().Done():
		case <-r.closing:
		}
	case reset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tcp, ok := conn.(*net.TCPConn); ok {
					_ = tcp.SetLinger(0)
				}
				conn.Close()
			}
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		if r.b.Location != "" {
			w.Header().Set("Location", r.b.Location)
		}
		w.WriteHeader(failStatus)
		fmt.Fprintf(w, `{"error":"failing on purpose (%d)"}`, failStatus)
	}
}

// failure decides, from the request's number, whether it fails and how.
func (r *Receiver) failure() (fail bool, status int, reset bool) {
	r.mu.Lock()
	n := r.count
	r.count++
	r.mu.Unlock()
	fail = r.b.FailFirst < 0 || n < r.b.FailFirst
	status, reset = r.b.FailStatus, r.b.Reset
	if len(r.b.Statuses) > 0 {
		fail = n < len(r.b.Statuses) && r.b.Statuses[n]/100 != 2
		if fail {
			status = r.b.Statuses[n]
			reset = status == 0
		}
	}
	return fail, status, reset
}

// record keeps the call (unless CountOnly) and wakes the waits.
func (r *Receiver) record(c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.b.CountOnly {
		r.calls = append(r.calls, c)
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// refuse answers a request the checks refuse, and logs why.
func (r *Receiver) refuse(w http.ResponseWriter, status int, code, message string) {
	r.logf("callback refused (%d %s): %s", status, code, message)
	writeError(w, status, code, message)
}

func (r *Receiver) logf(format string, args ...any) {
	if r.b.Log != nil {
		r.b.Log(format, args...)
	}
}

// writeError answers the control plane's error shape, {"error":{"code","message"}}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}

// callbackID is the execution id of a path ExecutionsPath/{id}:complete.
func callbackID(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, ExecutionsPath+"/")
	id, complete := strings.CutSuffix(rest, ":complete")
	return id, ok && complete && id != "" && !strings.Contains(id, "/")
}

// Calls returns every request received so far (none with CountOnly).
func (r *Receiver) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// Count is how many requests the receiver answered or refused on
// purpose (the checks' refusals are not counted).
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// Delivered returns the requests that were answered 2xx.
func (r *Receiver) Delivered() []Call {
	var out []Call
	for _, c := range r.Calls() {
		if c.Status/100 == 2 {
			out = append(out, c)
		}
	}
	return out
}

// WaitDelivered waits until n results were delivered, or ctx ends.
func (r *Receiver) WaitDelivered(ctx context.Context, n int) ([]Call, error) {
	var d []Call
	if err := r.waitUntil(ctx, func() bool { d = r.Delivered(); return len(d) >= n }); err != nil {
		return r.Delivered(), fmt.Errorf("waited for %d delivered callbacks, got %d (of %d requests): %w", n, len(r.Delivered()), len(r.Calls()), err)
	}
	return d, nil
}

// Close stops the receiver (its server, when Start made it) and releases
// the requests it holds. Safe to call more than once.
func (r *Receiver) Close() {
	r.closed.Do(func() {
		close(r.closing)
		if r.srv == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.srv.Shutdown(ctx)
		_ = r.srv.Close()
	})
}
