// Package oneshot is the one-shot lifecycle: run the invocation the
// environment describes, post the result to the control plane, exit.
package oneshot

import (
	"context"
	"encoding/json"
	"log/slog"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/events"
	"nanofaas.dev/watchdog/internal/callback"
	"nanofaas.dev/watchdog/internal/protocol"
	"nanofaas.dev/watchdog/result"
)

// Exit statuses of the one-shot watchdog.
const (
	// ExitDelivered: the result reached the control plane, whatever the function did.
	ExitDelivered = 0
	// ExitUndelivered: every callback attempt failed; the result is in the log.
	ExitUndelivered = 1
)

// Run runs the invocation and delivers its result. Cancelling ctx (a
// shutdown signal) stops the function, but the result is still delivered.
func Run(ctx context.Context, cfg config.Config, deps protocol.Deps, cb *callback.Client) int {
	log := deps.Log
	rt := protocol.New(cfg, deps)
	inv := protocol.Invocation{
		ExecutionID: cfg.ExecutionID,
		TraceID:     cfg.TraceID,
		Payload:     cfg.Payload,
		Timeout:     cfg.Timeout,
	}
	var res result.Result
	if failed := rt.Start(ctx); failed != nil {
		res = *failed
	} else {
		res = rt.Invoke(ctx, inv)
		rt.Stop()
	}
	log.Info(events.InvocationFinished, events.KeySuccess, res.Success, events.KeyErrorCode, string(res.ErrorCode()), events.KeyDurationMs, res.DurationMs)
	if res.Error != nil {
		log.Info("invocation failed", "error_code", string(res.Error.Code), "message", res.Error.LogMessage())
	}
	return Deliver(context.WithoutCancel(ctx), cfg.CallbackURL, cfg.ExecutionID, cfg.TraceID, res, cb, log)
}

// Deliver posts res to the callback URL. When every attempt fails it logs the
// whole result as one line marked undelivered, so that nothing is lost, and
// returns ExitUndelivered.
func Deliver(ctx context.Context, base, executionID, traceID string, res result.Result, cb *callback.Client, log *slog.Logger) int {
	body := res.Marshal()
	target := callback.URL(base, executionID)
	d, err := cb.Deliver(ctx, target, executionID, traceID, body)
	if err != nil {
		log.Error("callback undelivered", "undelivered", true, "url", target, "attempts", d.Attempts,
			"error", err.Error(), "result", json.RawMessage(body))
		return ExitUndelivered
	}
	log.Info("callback delivered", "url", target, "attempts", d.Attempts, "status", d.Status)
	return ExitDelivered
}
