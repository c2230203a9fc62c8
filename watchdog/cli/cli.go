// Package cli is the watchdog's command line: flags parsed with kong, the
// environment variables documented in --help, and the exit status.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"

	"nanofaas.dev/watchdog"
	"nanofaas.dev/watchdog/config"
)

type flags struct {
	Version     kong.VersionFlag `help:"Print the version and exit."`
	CheckConfig bool             `help:"Validate the configuration from the environment and exit (0 when valid, 2 when not)."`
}

// exitRequest carries the status of kong's own exits (--help, --version).
type exitRequest struct{ code int }

// Main runs the watchdog command with args (without the program name) and
// returns the exit status.
func Main(ctx context.Context, version string, args, env []string, stdout, stderr io.Writer) (status int) {
	var f flags
	parser, err := kong.New(&f,
		kong.Name("watchdog"),
		kong.Description(Description()),
		kong.Vars{"version": version},
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitRequest{code}) }),
	)
	if err != nil {
		fmt.Fprintf(stderr, "watchdog: %v\n", err)
		return watchdog.ExitConfig
	}
	defer func() {
		if r := recover(); r != nil {
			req, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			status = req.code
		}
	}()
	if _, err := parser.Parse(args); err != nil {
		var pe *kong.ParseError
		if errors.As(err, &pe) {
			fmt.Fprintf(stderr, "watchdog: %v (the watchdog is configured from the environment; see watchdog --help)\n", err)
			return watchdog.ExitConfig
		}
		fmt.Fprintf(stderr, "watchdog: %v\n", err)
		return watchdog.ExitConfig
	}
	if f.CheckConfig {
		if _, err := config.New(env); err != nil {
			fmt.Fprintf(stderr, "watchdog: configuration error: %v\n", err)
			return watchdog.ExitConfig
		}
		fmt.Fprintln(stdout, "configuration is valid")
		return 0
	}
	return watchdog.Run(ctx, env, stdout, stderr)
}

// Description is the --help text: what the watchdog does, its exit
// statuses, and every environment variable with its default.
func Description() string {
	var b strings.Builder
	b.WriteString("Process supervisor for nanofaas function containers. Runs one invocation " +
		"(EXECUTION_MODE=HTTP|STDIO|FILE) and posts the result to CALLBACK_URL, or " +
		"serves /invoke on WARM_PORT (EXECUTION_MODE=WARM, or WARM=true).\n\n")
	b.WriteString("Exit status: 0 result delivered (or server stopped cleanly), 1 result undelivered (logged), 2 bad configuration.\n\n")
	b.WriteString("Environment variables [default]:\n\n")
	for _, v := range config.Variables() {
		def := v.Default
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(&b, "%s [%s]\n    %s\n\n", v.Name, def, v.Help)
	}
	return b.String()
}
