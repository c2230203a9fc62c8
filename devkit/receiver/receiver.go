// Package receiver is a real HTTP callback receiver (for the tests, the
// conformance CLI and the emulator): it records
// every result posted to it and can misbehave on purpose (fail, reset the
// connection, hang) so that delivery rules can be checked end to end.
package receiver

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Call is one request the receiver got.
type Call struct {
	Path   string
	Header http.Header
	Body   []byte
	// Status is what the receiver answered (0 when it reset or hung).
	Status int
	At     time.Time
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
	// Listen is the address to listen on (default 127.0.0.1:0).
	Listen string
	// Statuses, when not empty, answers request n with Statuses[n] (0:
	// reset the connection), and 200 once they run out; it replaces
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
}

// Receiver is a running callback receiver.
type Receiver struct {
	// Base is the URL to use as CALLBACK_URL.
	Base string
	b    Behaviour
	srv  *http.Server
	ln   net.Listener

	mu      sync.Mutex
	calls   []Call
	changed chan struct{}
	closing chan struct{}
}

// Start starts a receiver.
func Start(b Behaviour) (*Receiver, error) {
	if b.FailStatus == 0 {
		b.FailStatus = http.StatusServiceUnavailable
	}
	if b.Listen == "" {
		b.Listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", b.Listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for callbacks on %s: %w", b.Listen, err)
	}
	r := &Receiver{b: b, ln: ln, changed: make(chan struct{}), closing: make(chan struct{})}
	port := ln.Addr().(*net.TCPAddr).Port
	r.Base = fmt.Sprintf("http://127.0.0.1:%d/v1/internal/executions", port)
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Port is the TCP port the receiver listens on.
func (r *Receiver) Port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// ServeHTTP records the request and answers it as the behaviour says.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.refuses(w, req) {
		return
	}
	body, _ := io.ReadAll(io.LimitReader(req.Body, 256<<20))
	r.mu.Lock()
	n := len(r.calls)
	fail := r.b.FailFirst < 0 || n < r.b.FailFirst
	failStatus, reset := r.b.FailStatus, r.b.Reset
	if len(r.b.Statuses) > 0 {
		fail = n < len(r.b.Statuses) && r.b.Statuses[n]/100 != 2
		if fail {
			failStatus = r.b.Statuses[n]
			reset = failStatus == 0
		}
	}
	call := Call{Path: req.URL.Path, Header: req.Header.Clone(), Body: body, At: time.Now()}
	if !fail {
		call.Status = http.StatusOK
	} else if !reset && !r.b.Hang {
		call.Status = failStatus
	}
	r.calls = append(r.calls, call)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()

	if r.b.Before != nil {
		r.b.Before(call)
	}
	if r.b.Delay > 0 {
		select {
		case <-time.After(r.b.Delay):
		case <-req.Context().Done():
		case <-r.closing:
		}
	}
	switch {
	case !fail:
		w.WriteHeader(http.StatusOK)
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

// Calls returns every request received so far.
func (r *Receiver) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
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

// Close stops the receiver.
func (r *Receiver) Close() {
	close(r.closing)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	_ = r.srv.Close()
}
