package server

import (
	"context"
	"io"
	"testing"
	"time"

	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/callback"
	"nanofaas.dev/watchdog/internal/logging"
	"nanofaas.dev/watchdog/internal/process"
	"nanofaas.dev/watchdog/internal/protocol"
	"nanofaas.dev/watchdog/result"
)

// deliver registers a result's delivery (so that a drain waits for it) but
// sends nothing itself: run sends it only once the invocation slot is
// free, so a control plane that dispatches the next call as soon as it has
// a result never finds the slot taken.
func TestDeliverRegistersButSendsOnlyWhenTold(t *testing.T) {
	recv, err := receiver.Start(receiver.Behaviour{})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	cfg, err := config.New([]string{"WARM=true", "EXECUTION_MODE=STDIO", "WATCHDOG_CMD=true"})
	if err != nil {
		t.Fatal(err)
	}
	log := logging.New(io.Discard, cfg.LogLevel, "json")
	procs := process.NewManager(log, false)
	defer procs.Close()
	deps := protocol.Deps{Procs: procs, Log: log, Stdout: io.Discard, Stderr: io.Discard}
	s := New(cfg, deps, callback.NewClient(cfg.CallbackAttempts, cfg.CallbackBackoff, cfg.CallbackTimeout, log))

	send := s.deliver(&request{executionID: "later", callbackURL: recv.Base}, result.Success([]byte(`1`)))
	if send == nil {
		t.Fatal("deliver refused the only pending result")
	}
	if n := s.pending.pendingDeliveries(); n != 1 {
		t.Errorf("%d deliveries pending after deliver, want 1 (the drain must see it)", n)
	}
	// A second result, registered after it and sent at once, arrives: had
	// deliver sent the first itself, that one would have gone out first.
	sendMarker := s.deliver(&request{executionID: "marker", callbackURL: recv.Base}, result.Success([]byte(`2`)))
	if sendMarker == nil {
		t.Fatal("deliver refused the second pending result")
	}
	go sendMarker()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := recv.WaitFor(ctx, "marker"); err != nil {
		t.Fatal(err)
	}
	if calls := recv.Calls(); len(calls) != 1 {
		t.Fatalf("deliver sent the result itself (%d requests, want only the marker's) before it was told to", len(calls))
	}

	go send()
	if _, err := recv.WaitFor(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	s.deliveries.Wait()
	if n := s.pending.pendingDeliveries(); n != 0 {
		t.Errorf("%d deliveries pending after the send, want 0", n)
	}
}
