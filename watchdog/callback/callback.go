// Package callback delivers invocation results to the control plane:
// POST {CALLBACK_URL}/{execution id}:complete, retried with backoff on
// transport errors, 408, 429 and 5xx, each attempt with its own timeout.
package callback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBackoff caps the delay between attempts.
const maxBackoff = 5 * time.Second

// URL returns where the result of execution id is posted: base as given when
// it already ends in ":complete", otherwise base/{id}:complete.
func URL(base, id string) string {
	if strings.HasSuffix(base, ":complete") {
		return base
	}
	return strings.TrimRight(base, "/") + "/" + url.PathEscape(id) + ":complete"
}

// Client posts results.
type Client struct {
	HTTP           *http.Client
	Attempts       int
	Backoff        time.Duration
	AttemptTimeout time.Duration
	Log            *slog.Logger
}

// NewClient returns a client that does not follow redirects (a redirected
// POST would lose its body) and honours the proxy environment variables.
func NewClient(attempts int, backoff, attemptTimeout time.Duration, log *slog.Logger) *Client {
	return &Client{
		HTTP: &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Attempts:       attempts,
		Backoff:        backoff,
		AttemptTimeout: attemptTimeout,
		Log:            log,
	}
}

// Delivery says what happened to one callback.
type Delivery struct {
	URL      string
	Attempts int
	Status   int
}

// Deliver posts body to url for the execution, retrying as configured. The
// error, when not nil, says why the last attempt failed.
func (c *Client) Deliver(ctx context.Context, target, executionID, traceID string, body []byte) (Delivery, error) {
	d := Delivery{URL: target}
	var lastErr error
	for attempt := 1; attempt <= c.Attempts; attempt++ {
		d.Attempts = attempt
		status, retryAfter, err := c.post(ctx, target, executionID, traceID, body)
		d.Status = status
		if err == nil {
			return d, nil
		}
		lastErr = err
		var final *finalError
		if errors.As(err, &final) || attempt == c.Attempts {
			break
		}
		wait := c.Backoff << (attempt - 1)
		if wait > maxBackoff || wait <= 0 && c.Backoff > 0 {
			wait = maxBackoff
		}
		if retryAfter > wait {
			wait = min(retryAfter, maxBackoff)
		}
		c.Log.Warn("callback attempt failed; retrying", "url", target, "attempt", attempt, "error", err.Error(), "retry_in_ms", wait.Milliseconds())
		select {
		case <-ctx.Done():
			return d, fmt.Errorf("%w (then %v)", lastErr, ctx.Err())
		case <-time.After(wait):
		}
	}
	return d, lastErr
}

// finalError is an answer that retrying cannot change.
type finalError struct{ err error }

func (f *finalError) Error() string { return f.err.Error() }

func (c *Client) post(ctx context.Context, target, executionID, traceID string, body []byte) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, 0, &finalError{fmt.Errorf("cannot build the callback request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Execution-Id", executionID)
	if traceID != "" {
		req.Header.Set("X-Trace-Id", traceID)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot reach the callback URL: %w", err)
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	status := resp.StatusCode
	switch {
	case status/100 == 2:
		return status, 0, nil
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status/100 == 5:
		return status, retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("callback answered HTTP %d: %s", status, bytes.TrimSpace(snippet))
	case status/100 == 3:
		return status, 0, &finalError{fmt.Errorf("callback answered HTTP %d redirect to %q; set CALLBACK_URL to the final URL", status, resp.Header.Get("Location"))}
	default:
		return status, 0, &finalError{fmt.Errorf("callback answered HTTP %d (not retried): %s", status, bytes.TrimSpace(snippet))}
	}
}

func retryAfter(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs < 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
}
