// Command watchdog supervises one function process inside a container: it
// starts the function, feeds it the invocation, reports the result to the
// control plane, and cleans up after it. It is configured from the
// environment; see --help.
package main

import (
	"context"
	"os"

	"nanofaas.dev/watchdog"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(watchdog.Main(context.Background(), version, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
