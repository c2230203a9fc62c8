package emulator_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"nanofaas.dev/devkit/scripttest"
	"nanofaas.dev/emulator/cli"
	"nanofaas.dev/watchdog"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		// The emulator re-executes itself (os.Executable) for the built-in
		// watchdog and the demo function, so this one command is all three.
		"emulator": func() {
			os.Exit(cli.Main(context.Background(), "test", os.Args[1:], cli.Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
		},
		// A separate watchdog binary, for --watchdog.
		"watchdog": func() {
			os.Exit(watchdog.Run(context.Background(), os.Environ(), os.Stdout, os.Stderr))
		},
		// A STDIO function that holds MiB of touched memory (memory_test.go).
		"memhog": memhog,
	})
}

// memhog is the body of the test binary's "memhog MiB" command: it touches
// MiB of memory, holds it a moment (so that a sampler reading every few
// milliseconds sees it), and answers {} as a STDIO function.
func memhog() {
	mib, _ := strconv.Atoi(os.Args[1])
	buf := make([]byte, mib<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	time.Sleep(time.Second)
	runtime.KeepAlive(buf)
	fmt.Println("{}")
}

// TestScripts runs the scenarios in testdata/script: the emulator binary,
// the real watchdog, the fixture runtimes and, where they exist, the examples.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("../examples")
	if err != nil {
		t.Fatal(err)
	}
	setup := scripttest.Setup("../fixtures/runtimes")
	cmds := scripttest.Commands()
	cmds["json-var"] = cmdJSONVar
	cmds["wait-json"] = cmdWaitJSON
	// Every answer of the API in the scenarios is checked against the
	// emulator's OpenAPI document (the contract test).
	c := emulatorContract(t)
	cmds["http"] = cmdContractHTTP(c)
	cmds["upstream-cli-replay"] = cmdUpstreamReplay(c)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			if err := setup(env); err != nil {
				return err
			}
			env.Setenv("EXAMPLES", examples)
			return nil
		},
		Cmds:                cmds,
		Condition:           scripttest.Conditions,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

// json-var VAR PATH sets $VAR to the value at PATH (e.g. .output.pid or
// .[0].executionId) in the JSON of the last command's stdout: the "body:"
// line of the http commands, or the whole stdout. Strings are set without
// quotes, other values as JSON. It leaves stdout as it was.
func cmdJSONVar(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: json-var VAR PATH")
	}
	out := ts.ReadFile("stdout")
	doc := out
	for _, line := range strings.Split(out, "\n") {
		if b, ok := strings.CutPrefix(line, "body: "); ok {
			doc = b
		}
	}
	v, err := jsonAt([]byte(doc), args[1])
	if err != nil {
		ts.Fatalf("json-var: %v", err)
	}
	ts.Setenv(args[0], v)
	// Logged, not printed: stdout stays the request's, for the next json-var.
	ts.Logf("%s=%s", args[0], v)
}

// wait-json [-timeout D] [-not] URL PATH VALUE polls GET URL until the value
// at PATH in its JSON body is VALUE or, with -not, is there and is not VALUE.
func cmdWaitJSON(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("wait-json", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait")
	not := fs.Bool("not", false, "wait until the value differs")
	if err := fs.Parse(args); err != nil || fs.NArg() != 3 || neg {
		ts.Fatalf("usage: wait-json [-timeout D] [-not] URL PATH VALUE")
	}
	url, path, want := fs.Arg(0), fs.Arg(1), fs.Arg(2)
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(*timeout)
	last := "no attempt"
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err != nil {
			last = err.Error()
		} else {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got, err := jsonAt(data, path)
			switch {
			case err != nil:
				last = err.Error()
			case (got == want) != *not:
				ts.Logf("wait-json: %s = %s", path, got)
				return
			default:
				last = path + " = " + got
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("wait-json %s: %s did not become %s%s within %v (last: %s)", url, path, map[bool]string{true: "anything but ", false: ""}[*not], want, *timeout, last)
}

// jsonAt returns the value at path in doc: a string as is, others as JSON.
func jsonAt(doc []byte, path string) (string, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return "", fmt.Errorf("not JSON: %v: %s", err, doc)
	}
	for _, step := range splitPath(path) {
		switch cur := v.(type) {
		case map[string]any:
			next, ok := cur[step]
			if !ok {
				return "", fmt.Errorf("no %q in %s", step, doc)
			}
			v = next
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(cur) {
				return "", fmt.Errorf("no element %q in %s", step, doc)
			}
			v = cur[i]
		default:
			return "", fmt.Errorf("cannot take %q of %v", step, cur)
		}
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, _ := json.Marshal(v)
	return string(b), nil
}

// splitPath turns .a.b[0].c into a, b, 0, c.
func splitPath(p string) []string {
	p = strings.ReplaceAll(strings.ReplaceAll(p, "[", "."), "]", "")
	var out []string
	for _, s := range strings.Split(p, ".") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
