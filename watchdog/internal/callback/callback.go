// Package callback delivers invocation results to the control plane:
// POST {CALLBACK_URL}/{execution id}:complete, retried with backoff on
// transport errors, 408, 429 and 5xx, each attempt with its own timeout.
package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"nanofaas.dev/watchdog/result"
)

// maxBackoff caps the delay between attempts.
const maxBackoff = 5 * time.Second

// URL returns where the result of execution id is posted: base as given when
// its path already ends in ":complete", otherwise base/{id}:complete. The id
// goes into the path, before any query or fragment of base (appended after
// them, it would be lost in the query or never sent at all).
func URL(base, id string) string {
	path, rest := base, ""
	if i := strings.IndexAny(base, "?#"); i >= 0 {
		path, rest = base[:i], base[i:]
	}
	if strings.HasSuffix(path, ":complete") {
		return base
	}
	return escapeBasePath(strings.TrimRight(path, "/")) + "/" + url.PathEscape(id) + ":complete" + rest
}

// escapeBasePath percent-encodes the bytes of the path of base (scheme and
// authority left alone) that a URL path cannot hold as they are, such as a
// blank. Otherwise net/url drops the escaped form of the whole path and
// re-escapes the decoded one, and the "%2F" of an id with a slash goes out
// as a real "/" (an id "../../x" would leave the base path).
func escapeBasePath(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	j := strings.IndexByte(s[i+3:], '/')
	if j < 0 {
		return s
	}
	j += i + 3
	var b strings.Builder
	for k := j; k < len(s); k++ {
		c := s[k]
		if pathByte(c) || c == '%' && k+2 < len(s) && isHex(s[k+1]) && isHex(s[k+2]) {
			continue
		}
		if b.Len() == 0 {
			b.WriteString(s[:k])
		} else {
			b.WriteString(s[j:k])
		}
		fmt.Fprintf(&b, "%%%02X", c)
		j = k + 1
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(s[j:])
	return b.String()
}

// pathByte reports whether c may appear in a URL path as it is.
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Allowed reports whether target, an absolute http(s) URL, is under one of
// prefixes (CALLBACK_ALLOWED_PREFIXES): the same scheme, the same host and
// port (a missing port is the scheme's default), and a path that starts with
// the prefix's path at a segment boundary (a prefix "/v1/cb" allows "/v1/cb"
// and "/v1/cb/x", not "/v1/cbx"). A target with a user:password part, or
// whose path as sent has a "." or ".." segment in any disguise ("%2e%2e",
// "..;x" which Tomcat reads as "..", "x%2F..%2Fy" for servers that decode
// slashes), or anything else a server, proxy or framework might turn into
// one (see suspiciousPath), is never allowed: what a server makes of those
// is not what the prefix says.
func Allowed(target string, prefixes []string) bool {
	t, err := url.Parse(target)
	if err != nil || t.User != nil || t.Host == "" || t.Opaque != "" || hasDotSegment(t.EscapedPath()) || suspiciousPath(t.EscapedPath()) {
		return false
	}
	for _, prefix := range prefixes {
		p, err := url.Parse(prefix)
		if err != nil || p.Host == "" || p.Scheme != t.Scheme || !sameHost(p, t) {
			continue
		}
		if underPath(t.Path, p.Path) {
			return true
		}
	}
	return false
}

// hasDotSegment reports whether an escaped path has a segment that is, or
// decodes to, "." or "..", also before a ";" parameter or behind an
// encoded slash.
func hasDotSegment(escaped string) bool {
	for _, seg := range strings.Split(escaped, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		decoded, err := url.PathUnescape(seg)
		if err != nil {
			return true
		}
		for _, piece := range strings.Split(decoded, "/") {
			if piece == "." || piece == ".." {
				return true
			}
		}
	}
	return false
}

// suspiciousPath reports whether an escaped path holds anything beyond
// plain ASCII text and the escapes an id needs: a percent-encoded ".",
// "/", "\" or "%" (double encoding), a backslash, a control or non-ASCII
// byte (raw or encoded: overlong UTF-8 "%c0%ae", fullwidth "．"), or a
// segment that is "." or ".." once blanks and a ";" parameter are taken
// off ("..%20", "%09.."). Servers differ in what they decode, fold or trim;
// refusing all of these keeps the prefix check about the path a server
// really serves. Percent-encoded blanks and punctuation other than those
// stay allowed: an execution id may hold them.
func suspiciousPath(escaped string) bool {
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' {
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return true
			}
			d := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			if d == '.' || d == '/' || d == '\\' || d == '%' || d < 0x20 || d >= 0x7f {
				return true
			}
			i += 2
			continue
		}
		if c <= 0x20 || c >= 0x7f || c == '\\' {
			return true
		}
	}
	for _, seg := range strings.Split(escaped, "/") {
		decoded, err := url.PathUnescape(seg)
		if err != nil {
			return true
		}
		decoded, _, _ = strings.Cut(decoded, ";")
		if d := strings.Trim(decoded, " \t"); d == "." || d == ".." {
			return true
		}
	}
	return false
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// underPath reports whether path is prefix or below it, at a segment boundary.
func underPath(path, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	rest := path[len(prefix):]
	return rest == "" || strings.HasSuffix(prefix, "/") || rest[0] == '/'
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
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// The answer's headers are read and dropped: a receiver (maybe one a
	// request chose) that sends them without end costs at most this much.
	transport.MaxResponseHeaderBytes = 64 << 10
	return &Client{
		HTTP: &http.Client{
			Transport:     transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Attempts:       attempts,
		Backoff:        backoff,
		AttemptTimeout: attemptTimeout,
		Log:            log,
	}
}

// Delivery says what became of one result.
type Delivery struct {
	// Delivered is true when the control plane took the result (2xx).
	Delivered bool
	// URL is where the result was posted.
	URL string
	// Attempts is how many requests were sent (0 when none was).
	Attempts int
	// Status is the HTTP status of the last answer, 0 when there was none.
	Status int
	// Reason says why the result was not delivered; "" when it was.
	Reason string
}

// Deliver posts res to the callback URL of the execution (see URL), with
// the retry rules, and says what happened. It is the one delivery of both
// lifecycles. When the result is not delivered it logs the whole result as
// one line marked "undelivered":true, so that nothing is lost; log carries
// the execution's attributes.
func (c *Client) Deliver(ctx context.Context, base, executionID, traceID string, res result.Result, log *slog.Logger) Delivery {
	body := res.Marshal()
	d, err := c.Send(ctx, URL(base, executionID), executionID, traceID, body)
	if err != nil {
		d.Reason = err.Error()
		Undelivered(log, d, body)
		return d
	}
	log.Info("callback delivered", "url", Redact(d.URL), "attempts", d.Attempts, "status", d.Status)
	return d
}

// Undelivered logs a result that did not reach the control plane: the
// whole result (body) on one line marked "undelivered":true, with why.
func Undelivered(log *slog.Logger, d Delivery, body []byte) {
	log.Error("callback undelivered", "undelivered", true, "url", Redact(d.URL), "attempts", d.Attempts,
		"error", d.Reason, "result", json.RawMessage(body))
}

// Send posts body to target for the execution, retrying as configured.
// The error, when not nil, says why the last attempt failed; Deliver is
// what the lifecycles use.
func (c *Client) Send(ctx context.Context, target, executionID, traceID string, body []byte) (Delivery, error) {
	d := Delivery{URL: target}
	var lastErr error
	for attempt := 1; attempt <= c.Attempts; attempt++ {
		d.Attempts = attempt
		status, retryAfter, err := c.post(ctx, target, executionID, traceID, body)
		d.Status = status
		if err == nil {
			d.Delivered = true
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
		c.Log.Warn("callback attempt failed; retrying", "url", Redact(target), "attempt", attempt, "error", err.Error(), "retry_in_ms", wait.Milliseconds())
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
		return 0, 0, &finalError{fmt.Errorf("cannot build the callback request: %w", redactError(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Execution-Id", executionID)
	if traceID != "" {
		req.Header.Set("X-Trace-Id", traceID)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot reach the callback URL: %w", redactError(err))
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

// maxRetryAfter bounds a Retry-After value before it becomes a duration,
// so that a huge one cannot overflow (the wait is capped at maxBackoff anyway).
const maxRetryAfter = 24 * time.Hour

func retryAfter(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs < 0 {
		return 0
	}
	if secs > int(maxRetryAfter/time.Second) {
		return maxRetryAfter
	}
	return time.Duration(secs) * time.Second
}
