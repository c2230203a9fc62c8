// Package watchdog is the nanofaas watchdog: a process supervisor for
// serverless function containers, configured from the environment (see
// package config and `watchdog --help`).
//
// Main is the whole command line; Run is the supervisor without the
// command line (what the emulator runs in-process).
package watchdog

import (
	"context"
	"io"

	"nanofaas.dev/watchdog/internal/cli"
	"nanofaas.dev/watchdog/internal/supervise"
)

// ExitConfig is the exit status for a bad configuration (or bad flags).
const ExitConfig = supervise.ExitConfig

// Run runs the watchdog with the given environment until its lifecycle ends
// and returns its exit status: 0 when the result was delivered (one-shot) or
// the server stopped cleanly, 1 when a result could not be delivered,
// ExitConfig for a bad configuration.
func Run(ctx context.Context, env []string, stdout, stderr io.Writer) int {
	return supervise.Run(ctx, env, stdout, stderr)
}

// Main runs the watchdog command: args are the flags without the program
// name (--help, --version, --check-config); version is what --version prints.
func Main(ctx context.Context, version string, args, env []string, stdout, stderr io.Writer) int {
	return cli.Main(ctx, version, args, env, stdout, stderr)
}
