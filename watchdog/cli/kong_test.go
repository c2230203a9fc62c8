package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"nanofaas.dev/watchdog"
	"nanofaas.dev/watchdog/config"
)

// kongMain is the command line as it was with kong, the reference that
// Main must answer exactly like: same output, same errors, same status.
func kongMain(ctx context.Context, version string, args, env []string, stdout, stderr io.Writer) (status int) {
	type exitRequest struct{ code int }
	var f struct {
		Version     kong.VersionFlag `help:"Print the version and exit."`
		CheckConfig bool             `help:"Validate the configuration from the environment and exit (0 when valid, 2 when not)."`
	}
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

// TestMainAnswersLikeKong runs both command lines on the same arguments,
// with an incomplete environment (the watchdog stops with a configuration
// error when it gets as far as running) and a valid one (a server mode
// watchdog, which stops at once: its context is cancelled).
func TestMainAnswersLikeKong(t *testing.T) {
	t.Setenv("COLUMNS", "") // kong wraps --help to $COLUMNS when set
	validEnv := func() []string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		return []string{"WARM=true", "EXECUTION_MODE=STDIO", "WATCHDOG_CMD=cat", "LOG_LEVEL=error", "WARM_PORT=" + strconv.Itoa(port)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	argss := []string{
		"", "--help", "-h", "-hh", "--help=false", "--help=yes", "--help=maybe", "--version", "--version=1", "--version=",
		"--check-config", "--check-config=true", "--check-config=TRUE", "--check-config=false", "--check-config=no",
		"--check-config=0", "--check-config=MAYBE", "--check-config --check-config=false",
		"--version --check-config", "--check-config --version", "--help --version", "--version --help",
		"--help --bogus", "--bogus --help", "--bogus", "--bogus=1", "-v", "-x", "-hv", "-hx", "-h=1", "-H",
		"--verison", "--ver", "--versions", "--check", "--checkconfig", "--c", "--ch", "--v", "--h", "--he",
		"--hel", "--elp", "--x", "--Help", "---help", "--h-e-l-p", "--ünïcode",
		"extra", "-- extra", "--", "-- --help", "-", "--check-config extra", "--help extra", "extra --help",
		"extra --bogus", "--bogus extra", "-- -h",
	}
	for _, args := range argss {
		for _, valid := range []bool{false, true} {
			name := fmt.Sprintf("%q valid=%v", args, valid)
			var a []string
			if args != "" {
				a = strings.Fields(args)
			}
			var ko, ke, mo, me bytes.Buffer
			env := func() []string {
				if valid {
					return validEnv() // a port of its own: a stopped server may still hold its port
				}
				return nil
			}
			kc := kongMain(ctx, "v1.2.3", a, env(), &ko, &ke)
			mc := Main(ctx, "v1.2.3", a, env(), &mo, &me)
			if kc != mc || ko.String() != mo.String() || ke.String() != me.String() {
				t.Errorf("%s:\nkong: %d\n%s%s\nMain: %d\n%s%s", name, kc, ko.String(), ke.String(), mc, mo.String(), me.String())
			}
		}
	}
}
