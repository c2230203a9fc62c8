// Package oneshot is the one-shot lifecycle: run the invocation the
// environment describes, post the result to the control plane, exit.
package oneshot

import (
	"context"

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
// The function does not see CALLBACK_URL (unless PASS_CALLBACK_URL=true):
// the watchdog's callback is the execution's one result.
func Run(ctx context.Context, cfg config.Config, deps protocol.Deps, cb *callback.Client) int {
	log := deps.Log
	inv := protocol.Invocation{
		ExecutionID: cfg.ExecutionID,
		TraceID:     cfg.TraceID,
		Payload:     cfg.Payload,
		Timeout:     cfg.Timeout,
	}
	var res result.Result
	if p := protocol.NewProcess(cfg, deps); p != nil {
		if failed := p.Start(ctx); failed != nil {
			res = *failed
		} else {
			res = p.Invoke(ctx, inv)
			p.Stop()
		}
	} else {
		res = protocol.NewPerInvocation(cfg, deps).Invoke(ctx, inv)
	}
	log.Info(events.InvocationFinished, events.KeySuccess, res.Success, events.KeyErrorCode, string(res.ErrorCode()), events.KeyDurationMs, res.DurationMs)
	if res.Error != nil {
		log.Info("invocation failed", "error_code", string(res.Error.Code), "message", res.Error.LogMessage())
	}
	d := cb.Deliver(context.WithoutCancel(ctx), cfg.CallbackURL, cfg.ExecutionID, cfg.TraceID, res, log)
	if !d.Delivered {
		return ExitUndelivered
	}
	return ExitDelivered
}
