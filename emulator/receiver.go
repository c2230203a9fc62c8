package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/result"
)

// maxResultBytes bounds a callback body (the watchdog's MAX_OUTPUT_BYTES
// default is 32 MiB, plus the envelope) and a request's payload.
const maxResultBytes = 64 << 20

// NewReceiver returns the emulator's callback endpoint, to mount at
// receiver.ExecutionsPath: the control plane's checks and answers (204, or
// {"error":{"code","message"}} for a refusal, logged with log), results
// handed to whoever Expects their execution id and no request kept.
// unknown answers a callback that nobody expects (nil: refused with 404).
func NewReceiver(log func(format string, args ...any), unknown func(id string, res result.Result) int) *receiver.Receiver {
	return receiver.New(controlPlane(log, unknown))
}

// StartReceiver is NewReceiver listening on addr ("127.0.0.1:0", or
// "0.0.0.0:0" for containers) on its own (invoke).
func StartReceiver(addr string, log func(format string, args ...any)) (*receiver.Receiver, error) {
	b := controlPlane(log, nil)
	b.Listen = addr
	return receiver.Start(b)
}

func controlPlane(log func(format string, args ...any), unknown func(id string, res result.Result) int) receiver.Behaviour {
	if unknown == nil {
		unknown = func(string, result.Result) int { return http.StatusNotFound }
	}
	return receiver.Behaviour{OKStatus: http.StatusNoContent, MaxBody: maxResultBytes, CheckResults: true,
		CountOnly: true, Unknown: unknown, Log: log}
}

// ErrorInfo is the error object of the control plane's API,
// {"code","message"}: an execution's error (a watchdog's error code, or
// CONFIG_ERROR / WATCHDOG_ERROR) or a refused request's. It has the shape of
// a result's error (result.Error) but not its codes.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// listener is a running HTTP server of its own (the callback listener on
// Docker's bridge for serve --docker).
type listener struct {
	srv  *http.Server
	ln   net.Listener
	Port int
}

// listen serves h on addr.
func listen(addr string, h http.Handler) (*listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &listener{srv: srv, ln: ln, Port: ln.Addr().(*net.TCPAddr).Port}, nil
}

// Close stops the server, giving requests in progress 2 s.
func (l *listener) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.srv.Shutdown(ctx)
	_ = l.srv.Close()
}
