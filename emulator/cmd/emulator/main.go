// Command emulator is a local nanofaas control plane for function
// development: `emulator invoke` runs a function once through the real
// watchdog, `emulator serve` serves the control-plane API. See --help.
package main

import (
	"context"
	"os"

	"nanofaas.dev/emulator/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(cli.Main(context.Background(), version, os.Args[1:], cli.Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
}
