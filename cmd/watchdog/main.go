// Command watchdog supervises one function process inside a container: it
// starts the function, feeds it the invocation, reports the result to the
// control plane, and cleans up after it. It is configured from the
// environment; see --help.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/alecthomas/kong"

	"nanofaas.dev/watchdog"
	"nanofaas.dev/watchdog/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type cli struct {
	Version     kong.VersionFlag `help:"Print the version and exit."`
	CheckConfig bool             `help:"Validate the configuration from the environment and exit (0 when valid, 2 when not)."`
}

func main() {
	var c cli
	kong.Parse(&c,
		kong.Name("watchdog"),
		kong.Description(description()),
		kong.Vars{"version": version},
		kong.UsageOnError(),
	)
	if c.CheckConfig {
		if _, err := config.New(os.Environ()); err != nil {
			fmt.Fprintf(os.Stderr, "watchdog: configuration error: %v\n", err)
			os.Exit(watchdog.ExitConfig)
		}
		fmt.Println("configuration is valid")
		return
	}
	os.Exit(watchdog.Run(context.Background(), os.Environ(), os.Stdout, os.Stderr))
}

func description() string {
	var b strings.Builder
	b.WriteString("Process supervisor for nanofaas function containers. Runs one invocation\n")
	b.WriteString("(EXECUTION_MODE=HTTP|STDIO|FILE) and posts the result to CALLBACK_URL, or\n")
	b.WriteString("serves /invoke on WARM_PORT (EXECUTION_MODE=WARM, or WARM=true).\n\n")
	b.WriteString("Exit status: 0 result delivered, 1 result undelivered (logged), 2 bad configuration.\n\n")
	b.WriteString("Environment variables (default in brackets):\n")
	for _, v := range config.Variables() {
		def := v.Default
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(&b, "  %s [%s]\n      %s\n", v.Name, def, v.Help)
	}
	return b.String()
}
