package callback

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"http://cp/cb/e1:complete":                         "http://cp/cb/e1:complete",
		"http://cp/cb/e1:complete?token=s3cret":            "http://cp/cb/e1:complete?token=REDACTED",
		"http://cp/cb?a=1&b&c=&token=x%20y":                "http://cp/cb?a=REDACTED&b&c=REDACTED&token=REDACTED",
		"http://user:pass@cp/cb":                           "http://REDACTED@cp/cb",
		"http://user@cp/cb?k=v#frag":                       "http://REDACTED@cp/cb?k=REDACTED#REDACTED",
		"https://cp:8443/a%20b/e:complete?sig=abc;def=ghi": "https://cp:8443/a%20b/e:complete?sig=REDACTED",
		"http://cp/cb?":                                    "http://cp/cb?",
		"::not a url?token=secret":                         "::not a url?REDACTED",
		"http://us%zzer:secret@cp/cb":                      "REDACTED (a URL that cannot be parsed)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// The secret in a callback URL's query never reaches the log: not in the
// url field, not inside a transport error's message.
func TestDeliverLogsNoQuerySecret(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every attempt fails with a transport error
	var logs strings.Builder
	c := NewClient(2, time.Millisecond, time.Second, slog.New(slog.NewJSONHandler(&logs, nil)))
	_, err = c.Send(context.Background(), "http://"+addr+"/cb/e1:complete?token=TOPSECRET", "e1", "", []byte("{}"))
	if err == nil {
		t.Fatal("delivered to nothing")
	}
	if strings.Contains(err.Error(), "TOPSECRET") || strings.Contains(logs.String(), "TOPSECRET") {
		t.Errorf("the query secret leaks:\nerror: %v\nlogs: %s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "token=REDACTED") {
		t.Errorf("the log does not show the redacted URL: %s", logs.String())
	}
	_ = io.Discard
}
