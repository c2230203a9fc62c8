package callback

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Results reach an https control plane. The binary is kept small, but
// crypto/tls stays: this must keep passing (also when the watchdog is
// built with -tags nethttpomithttp2, which leaves HTTP/2 out of net/http
// and makes the callback speak HTTP/1.1 over TLS).
func TestDeliversOverHTTPS(t *testing.T) {
	type got struct {
		path, id, body string
		tls            bool
	}
	calls := make(chan got, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls <- got{path: r.URL.Path, id: r.Header.Get("X-Execution-Id"), body: string(b), tls: r.TLS != nil}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	c := NewClient(1, 0, 5*time.Second, slog.New(slog.DiscardHandler))
	// Trust the test server's certificate, as an image trusts its CAs.
	c.HTTP.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	target := URL(srv.URL+"/v1/internal/executions", "exec-tls")
	d, err := c.Send(context.Background(), target, "exec-tls", "", []byte(`{"success":true,"output":1,"error":null}`))
	if err != nil {
		t.Fatalf("delivery over https failed: %v", err)
	}
	if d.Status != http.StatusNoContent || d.Attempts != 1 {
		t.Errorf("delivery = %+v, want one attempt answered 204", d)
	}
	g := <-calls
	if !g.tls || g.path != "/v1/internal/executions/exec-tls:complete" || g.id != "exec-tls" || g.body != `{"success":true,"output":1,"error":null}` {
		t.Errorf("the control plane got %+v", g)
	}
}
