package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"nanofaas.dev/conformance"
	"nanofaas.dev/devkit/freeport"
	"nanofaas.dev/devkit/scripttest"
	emulator "nanofaas.dev/emulator/cli"
	"nanofaas.dev/watchdog"
	"nanofaas.dev/watchdog/result"
)

// cleanupM removes, once every test has run, what the tests built for the
// whole process (RunMain exits the process itself, so this cannot follow it).
type cleanupM struct{ *testing.M }

// Run runs the tests, then removes the fixture runtime.
func (c cleanupM) Run() int {
	code := c.M.Run()
	removeFixtureRuntime()
	return code
}

func TestMain(m *testing.M) {
	os.Exit(testscript.RunMain(cleanupM{m}, map[string]func() int{
		"watchdog": func() int {
			return watchdog.Main(context.Background(), "conformance-test", os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
		},
		// The emulator re-executes itself (os.Executable) for its built-in
		// watchdog: this one command is both.
		"emulator": func() int {
			return emulator.Main(context.Background(), "conformance-test", os.Args[1:], emulator.Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
		},
		"conformance": func() int {
			return conformance.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
		},
	}))
}

// TestScripts runs the host scenarios in testdata/script: one file per
// requirement, named after it, running the real watchdog with the example
// runtimes on this machine (examples/*/function.json give their commands;
// scripts/examples-host.sh prepares what they need).
func TestScripts(t *testing.T) {
	root := repoRoot(t)
	setup := scripttest.Setup(filepath.Join(root, "fixtures", "runtimes"))
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			if err := setup(env); err != nil {
				return err
			}
			env.Setenv("EXAMPLES", filepath.Join(root, "examples"))
			return nil
		},
		Cmds:                commands(),
		Condition:           scripttest.Conditions,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

func commands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	cmds := scripttest.Commands()
	cmds["example"] = cmdExample
	cmds["json-output"] = cmdJSONOutput
	cmds["json-eq"] = cmdJSONEq
	return cmds
}

// example NAME sets the environment to run examples/NAME on this machine
// with the watchdog: EXECUTION_MODE, WATCHDOG_CMD and the manifest's env,
// with RUNTIME_URL (and WARM_PORT for a WARM example) moved to free ports;
// EXAMPLE_DIR (where to cd before exec watchdog), EXAMPLE_PAYLOAD,
// EXAMPLE_OUTPUT, INVOCATION_PAYLOAD and EXECUTION_ID (exec-NAME);
// RUNTIME_PORT, and WARM_PORT.
// It fails, saying how to fix it, when the example's host dependencies are
// not prepared.
func cmdExample(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: example NAME")
	}
	dir := filepath.Join(ts.Getenv("EXAMPLES"), args[0])
	data, err := os.ReadFile(filepath.Join(dir, "function.json"))
	ts.Check(err)
	var ex Example
	ts.Check(json.Unmarshal(data, &ex))
	cmdDir := filepath.Join(dir, ex.CmdDir)
	argv := strings.Fields(ex.Command)
	if len(argv) == 0 {
		ts.Fatalf("example %s: no command in function.json", args[0])
	}
	if strings.Contains(argv[0], "/") {
		if _, err := os.Stat(filepath.Join(cmdDir, argv[0])); err != nil {
			ts.Fatalf("example %s: %s is missing (%v): prepare the examples with scripts/examples-host.sh", args[0], argv[0], err)
		}
	} else if _, err := exec.LookPath(argv[0]); err != nil {
		ts.Fatalf("example %s: %s is not installed on this machine: see scripts/examples-host.sh", args[0], argv[0])
	}
	for _, a := range argv[1:] {
		// Files the command names (a jar, a script) must be there too.
		if strings.HasSuffix(a, ".jar") || strings.HasSuffix(a, ".py") || strings.HasSuffix(a, ".js") {
			if _, err := os.Stat(filepath.Join(cmdDir, a)); err != nil {
				ts.Fatalf("example %s: %s is missing: prepare the examples with scripts/examples-host.sh", args[0], a)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(cmdDir, "package.json")); err == nil {
		if _, err := os.Stat(filepath.Join(cmdDir, "node_modules")); err != nil {
			ts.Fatalf("example %s: node_modules is missing: prepare the examples with scripts/examples-host.sh", args[0])
		}
	}
	mode := ex.Mode
	ts.Setenv("EXECUTION_MODE", mode)
	ts.Setenv("EXECUTION_ID", "exec-"+args[0])
	ts.Setenv("WATCHDOG_CMD", ex.Command)
	ts.Setenv("EXAMPLE_DIR", cmdDir)
	ts.Setenv("EXAMPLE_PAYLOAD", compact(ts, ex.Example.Payload))
	ts.Setenv("EXAMPLE_OUTPUT", compact(ts, ex.Example.Output))
	ts.Setenv("INVOCATION_PAYLOAD", compact(ts, ex.Example.Payload))
	for k, v := range ex.Env {
		ts.Setenv(k, v)
	}
	if mode == "HTTP" || mode == "WARM" {
		raw := ex.Env["RUNTIME_URL"]
		if raw == "" {
			raw = "http://127.0.0.1:8080/invoke"
		}
		u, err := url.Parse(raw)
		ts.Check(err)
		port := freePort(ts)
		u.Host = u.Hostname() + ":" + port
		ts.Setenv("RUNTIME_URL", u.String())
		ts.Setenv("RUNTIME_PORT", port)
	}
	if mode == "WARM" {
		ts.Setenv("WARM_PORT", freePort(ts))
	}
}

// freePort is a port for the example's runtime or watchdog to bind later
// (see package freeport).
func freePort(ts *testscript.TestScript) string {
	port, err := freeport.Pick()
	ts.Check(err)
	return strconv.Itoa(port)
}

func compact(ts *testscript.TestScript, doc json.RawMessage) string {
	v, err := conformance.DecodeJSON(doc)
	ts.Check(err)
	b, err := json.Marshal(v)
	ts.Check(err)
	return string(b)
}

// json-output FILE WANT checks that the result body in FILE (a callback
// saved with `callbacks -save`, or an /invoke answer) is a success whose
// output equals WANT as a JSON value (compared with go-cmp).
func cmdJSONOutput(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: json-output FILE WANT_JSON")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	res, err := result.Decode(data)
	if err != nil {
		ts.Fatalf("json-output: %s is not a result: %v", args[0], err)
	}
	diff := "not a success"
	if res.Success {
		diff, err = conformance.DiffJSON([]byte(args[1]), res.Output)
		ts.Check(err)
	}
	if (diff == "") == neg {
		if neg {
			ts.Fatalf("json-output: the output is %s", args[1])
		}
		ts.Fatalf("json-output: %s: output differs (-want +got):\n%s\nresult: %s", args[0], diff, data)
	}
	if !neg {
		fmt.Fprintf(ts.Stdout(), "output matches %s\n", args[1])
	}
}

// json-eq FILE WANT checks that FILE holds one JSON document equal to WANT
// as a JSON value (compared with go-cmp). FILE may be stdout, as in cmp.
func cmdJSONEq(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: json-eq FILE WANT_JSON")
	}
	got := ts.ReadFile(args[0])
	diff, err := conformance.DiffJSON([]byte(args[1]), []byte(got))
	if err != nil {
		ts.Fatalf("json-eq: %v (%s: %q)", err, args[0], got)
	}
	if (diff == "") == neg {
		if neg {
			ts.Fatalf("json-eq: %s is %s", args[0], args[1])
		}
		ts.Fatalf("json-eq: %s differs (-want +got):\n%s", args[0], diff)
	}
}
