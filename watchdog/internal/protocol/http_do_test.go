package protocol

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"nanofaas.dev/watchdog/config"
)

// HTTP.do must answer like HTTP.client.Do, which it replaces on the
// invocation path: same responses, same error messages, same headers sent.
func TestDoAnswersLikeClientDo(t *testing.T) {
	// The handler runs on the server's goroutines: seen is shared with the
	// test, under mu.
	var (
		mu   sync.Mutex
		seen []http.Header
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		case "/hangup":
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		default:
			_, _ = io.WriteString(w, `{"ok":true}`)
		}
	}))
	defer srv.Close()
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + refused.Addr().String() + "/invoke"
	refused.Close()
	withCreds := strings.Replace(srv.URL, "http://", "http://user:secret@", 1)

	for _, target := range []string{
		srv.URL + "/invoke", srv.URL + "/redirect", srv.URL + "/hangup", refusedURL,
		withCreds + "/invoke", withCreds + "/hangup", "http://user@" + strings.TrimPrefix(srv.URL, "http://") + "/hangup",
	} {
		h := NewHTTP(config.Config{RuntimeURL: target}, Deps{})
		answers := make([]string, 2)
		for i, do := range []func(*http.Request) (*http.Response, error){h.client.Do, h.do} {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, target, bytes.NewReader([]byte(`{}`)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header["Content-Type"] = hdrJSON
			req.Header["X-Execution-Id"] = []string{"exec-1"}
			resp, err := do(req)
			if err != nil {
				answers[i] = "error: " + err.Error()
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers[i] = resp.Status + " " + resp.Header.Get("Location") + " " + string(body)
		}
		t.Logf("%s: %s", target, answers[1])
		if answers[0] != answers[1] {
			t.Errorf("%s:\nclient.Do: %s\ndo:        %s", target, answers[0], answers[1])
		}
		h.client.CloseIdleConnections()
	}
	// Every request reached the server twice, with the same headers.
	srv.Close() // waits for the handlers to return
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i+1 < len(seen); i += 2 {
		a, b := seen[i], seen[i+1]
		for _, k := range []string{"Authorization", "Content-Type", "X-Execution-Id", "User-Agent", "Content-Length"} {
			if a.Get(k) != b.Get(k) {
				t.Errorf("request %d: %s is %q through client.Do, %q through do", i/2, k, a.Get(k), b.Get(k))
			}
		}
	}
}
