package receiver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"nanofaas.dev/watchdog/result"
)

// What a receiver standing in for the control plane needs: the callback
// path, the URL for a sender elsewhere (a container), the calls of one
// execution and their results.

// ExecutionsPath is the control plane's callback path: a watchdog posts the
// result of execution ID to ExecutionsPath + "/ID:complete".
const ExecutionsPath = "/v1/internal/executions"

// URL is the CALLBACK_URL for a sender that reaches this machine as host
// (host.docker.internal from a container, say). Base is URL("127.0.0.1").
// A container reaches the receiver only when it listens on an address the
// container can route to (Behaviour.Listen "0.0.0.0:0").
func (r *Receiver) URL(host string) string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(r.Port())) + ExecutionsPath
}

// ExecutionID is the execution id the call's path names: what follows
// ExecutionsPath, without ":complete".
func (c Call) ExecutionID() string {
	id := strings.TrimPrefix(c.Path, ExecutionsPath+"/")
	return strings.TrimSuffix(id, ":complete")
}

// Result decodes the call's body (see result.Decode); a body that
// CheckResults decoded already is not decoded again.
func (c Call) Result() (result.Result, error) {
	if c.res != nil {
		return *c.res, nil
	}
	res, err := result.Decode(c.Body)
	if err != nil {
		return result.Result{}, fmt.Errorf("callback body is not a result: %v: %.200q", err, c.Body)
	}
	return res, nil
}

// For returns the requests received for an execution id.
func (r *Receiver) For(id string) []Call {
	var out []Call
	for _, c := range r.Calls() {
		if c.ExecutionID() == id {
			out = append(out, c)
		}
	}
	return out
}

// WaitFor waits until a result for an execution id was delivered (answered
// 2xx), or ctx ends, and returns the first one.
func (r *Receiver) WaitFor(ctx context.Context, id string) (Call, error) {
	var got Call
	err := r.waitUntil(ctx, func() bool {
		for _, c := range r.Delivered() {
			if c.ExecutionID() == id {
				got = c
				return true
			}
		}
		return false
	})
	if err != nil {
		return Call{}, fmt.Errorf("waited for a delivered callback for %s, got none (of %d requests for it): %w", id, len(r.For(id)), err)
	}
	return got, nil
}

// waitUntil waits until done reports true, checking it again after every
// request the receiver records, or until ctx ends.
func (r *Receiver) waitUntil(ctx context.Context, done func() bool) error {
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if done() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// refuses answers 404 to a request that Behaviour.OnlyCallbacks excludes.
func (r *Receiver) refuses(w http.ResponseWriter, req *http.Request) bool {
	if !r.b.OnlyCallbacks || (req.Method == http.MethodPost && strings.HasPrefix(req.URL.Path, ExecutionsPath+"/")) {
		return false
	}
	http.Error(w, `{"error":"not a callback"}`, http.StatusNotFound)
	return true
}
