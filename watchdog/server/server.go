// Package server is the server lifecycle (WARM): the watchdog serves
// /invoke, /health and /metrics on WARM_PORT and runs invocations one at a time.
package server

import (
	"context"

	"nanofaas.dev/watchdog/callback"
	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/protocol"
)

// Run serves until ctx is cancelled or the idle timeout passes.
func Run(ctx context.Context, cfg config.Config, deps protocol.Deps, cb *callback.Client) int {
	deps.Log.Error("server mode is not built yet")
	return 2
}
