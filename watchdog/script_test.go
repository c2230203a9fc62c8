package watchdog_test

import (
	"context"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"nanofaas.dev/devkit/scripttest"
	"nanofaas.dev/watchdog"
)

func TestMain(m *testing.M) {
	os.Exit(testscript.RunMain(m, map[string]func() int{
		"watchdog": func() int {
			return watchdog.Main(context.Background(), "test", os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
		},
	}))
}

// TestScripts runs the scenarios in testdata/script against the real
// watchdog binary, fixture functions and a real callback receiver.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		Setup:               scripttest.Setup("../fixtures/runtimes"),
		Cmds:                scripttest.Commands(),
		Condition:           scripttest.Conditions,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}
