// Command conformance checks a nanofaas function runtime image against the
// conformance spec (conformance/SPEC.md), and lists the spec's requirements.
// See `conformance --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"nanofaas.dev/conformance"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	status := conformance.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(status)
}
