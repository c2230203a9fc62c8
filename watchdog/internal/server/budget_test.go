package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"nanofaas.dev/devkit/logrecords"
	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/internal/server"
)

// tarpit accepts connections and never answers; it closes them at Close.
type tarpit struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func startTarpit(t *testing.T) *tarpit {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tarpit{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(tp.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tp.mu.Lock()
			tp.conns = append(tp.conns, c)
			tp.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-tp.done
		tp.mu.Lock()
		for _, c := range tp.conns {
			c.Close()
		}
		tp.mu.Unlock()
	})
	return tp
}

func (tp *tarpit) base() string { return "http://" + tp.ln.Addr().String() + "/cb" }

// Callers who choose callback_url cannot starve the results bound for
// CALLBACK_URL: with request-chosen callbacks to a tarpit filling their
// share of the pending budget, a result for the trusted control plane is
// still delivered, and what was shed is logged for what it is.
func TestFaultTarpitCallbacksDoNotStarveCallbackURL(t *testing.T) {
	opts := server.DefaultOptions()
	opts.MaxPendingDeliveries, opts.MaxPendingBytes = 16, 1<<20
	opts.DeliveryDrainTimeout = 200 * time.Millisecond
	healthy, err := receiver.Start(receiver.Behaviour{})
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.Close()
	tp := startTarpit(t)
	ts := startPerCallWith(t, opts, "CALLBACK_URL="+healthy.Base, "CALLBACK_TIMEOUT_MS=60000", "CALLBACK_ATTEMPTS=1", "LOG_LEVEL=info")

	const n = 40 // far past the whole budget of 16
	for i := range n {
		code, _, body := post(t, http.DefaultClient, ts.url+"/invoke",
			fmt.Sprintf(`{"execution_id":"tar-%d","callback_url":%q,"payload":%d}`, i, tp.base(), i))
		if code != http.StatusOK {
			t.Fatalf("invocation %d: %d %s", i, code, body)
		}
	}
	code, _, body := post(t, http.DefaultClient, ts.url+"/invoke", `{"execution_id":"trusted-1","payload":"legit"}`)
	if code != http.StatusOK {
		t.Fatalf("trusted invocation: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := healthy.WaitDelivered(ctx, 1)
	if err != nil || !strings.Contains(string(got[0].Body), `"output":"legit"`) {
		t.Fatalf("the result for CALLBACK_URL was not delivered while callbacks to a tarpit were pending: %v %v\n%s", got, err, ts.logs.String())
	}
	logs := ts.logs.String()
	recs := records(t, logs)
	if hasRecord(recs, map[string]any{"execution_id": "trusted-1", "undelivered": true}) {
		t.Errorf("the trusted result was shed:\n%s", logs)
	}
	// What was shed says it was a request-chosen destination, not the control plane.
	if !hasRecord(recs, map[string]any{"execution_id": "tar-39", "undelivered": true}) {
		t.Errorf("the last tarpit result was not shed")
	}
	for _, rec := range matching(recs, map[string]any{"undelivered": true, "error": regexp.MustCompile(`not attempted`)}) {
		if !strings.Contains(logrecords.Text(rec["error"]), "request-chosen callback_url") {
			t.Errorf("a shed result does not say it was bound for a request-chosen destination: %v", rec)
			break
		}
	}
}
