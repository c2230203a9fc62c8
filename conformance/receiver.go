package conformance

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
)

// CallbackPath is the path prefix the receiver serves, the nanofaas
// control plane's: POST /v1/internal/executions/{id}:complete.
const CallbackPath = "/v1/internal/executions"

// Callback is one result a container posted.
type Callback struct {
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
}

// ExecutionID is the id the path names (the part before ":complete").
func (c Callback) ExecutionID() string {
	id := strings.TrimPrefix(c.Path, CallbackPath+"/")
	return strings.TrimSuffix(id, ":complete")
}

// Result decodes the body.
func (c Callback) Result() (*ResultBody, error) {
	var r ResultBody
	if err := json.Unmarshal(c.Body, &r); err != nil {
		return nil, fmt.Errorf("callback body is not a result: %v: %.200q", err, c.Body)
	}
	return &r, nil
}

// ResultBody is the watchdog's result: the seed's three fields plus facts.
type ResultBody struct {
	Success    bool            `json:"success"`
	Output     json.RawMessage `json:"output"`
	Error      *ResultError    `json:"error"`
	ExitCode   *int            `json:"exit_code,omitempty"`
	DurationMs int64           `json:"duration_ms"`
}

// ResultError is a failed result's error.
type ResultError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Code returns the error code, or "" for a success.
func (r *ResultBody) Code() string {
	if r == nil || r.Error == nil {
		return ""
	}
	return r.Error.Code
}

// Receiver is a callback receiver that containers reach through the host
// gateway: it listens on every interface of this machine.
type Receiver struct {
	ln  net.Listener
	srv *http.Server

	// OnCallback, when set, runs before the receiver answers a callback; the
	// watchdog waits for the answer meanwhile. Set it before use.
	OnCallback func(Callback)

	mu      sync.Mutex
	calls   []Callback
	changed chan struct{}
}

// StartReceiver listens on 0.0.0.0 (a free port) for callbacks.
func StartReceiver() (*Receiver, error) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		return nil, fmt.Errorf("cannot listen for callbacks: %w", err)
	}
	r := &Receiver{ln: ln, changed: make(chan struct{})}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Port is the port the receiver listens on.
func (r *Receiver) Port() int { return r.ln.Addr().(*net.TCPAddr).Port }

// ContainerURL is the CALLBACK_URL a container uses to reach the receiver.
func (r *Receiver) ContainerURL() string {
	return fmt.Sprintf("http://%s:%d%s", HostGateway, r.Port(), CallbackPath)
}

// LocalURL is the CALLBACK_URL a process on this machine uses.
func (r *Receiver) LocalURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", r.Port(), CallbackPath)
}

// ServeHTTP records a callback and answers 200.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || !strings.HasPrefix(req.URL.Path, CallbackPath+"/") {
		http.Error(w, `{"error":"not a callback"}`, http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	c := Callback{Path: req.URL.Path, Header: req.Header.Clone(), Body: body, At: time.Now()}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	close(r.changed)
	r.changed = make(chan struct{})
	hook := r.OnCallback
	r.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	w.WriteHeader(http.StatusOK)
}

// For returns the callbacks posted for an execution id.
func (r *Receiver) For(id string) []Callback {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Callback
	for _, c := range r.calls {
		if c.ExecutionID() == id {
			out = append(out, c)
		}
	}
	return out
}

// Wait waits until n callbacks were posted for id, or ctx ends.
func (r *Receiver) Wait(ctx context.Context, id string, n int) ([]Callback, error) {
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if got := r.For(id); len(got) >= n {
			return got, nil
		}
		select {
		case <-ctx.Done():
			got := r.For(id)
			return got, fmt.Errorf("waited for %d callback(s) for %s, got %d: %w", n, id, len(got), ctx.Err())
		case <-changed:
		}
	}
}

// Close stops the receiver.
func (r *Receiver) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	_ = r.srv.Close()
}
