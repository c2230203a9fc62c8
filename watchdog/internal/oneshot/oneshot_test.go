package oneshot_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nanofaas.dev/devkit/freeport"
	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/callback"
	"nanofaas.dev/watchdog/internal/logging"
	"nanofaas.dev/watchdog/internal/oneshot"
	"nanofaas.dev/watchdog/internal/process"
	"nanofaas.dev/watchdog/internal/protocol"
)

// sdkRuntime is the fixture that reports like the nanofaas SDKs: it posts
// its own callback ("sdk":true) when it sees CALLBACK_URL.
func sdkRuntime(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../../fixtures/runtimes/sdk_runtime.py")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// runOnce runs one one-shot invocation with env and returns its exit status.
func runOnce(t *testing.T, env []string) int {
	t.Helper()
	cfg, err := config.New(env)
	if err != nil {
		t.Fatal(err)
	}
	log := logging.New(io.Discard, cfg.LogLevel, "json")
	procs := process.NewManager(log, false)
	defer procs.Close()
	deps := protocol.Deps{Procs: procs, Log: log, Stdout: io.Discard, Stderr: io.Discard}
	cb := callback.NewClient(cfg.CallbackAttempts, cfg.CallbackBackoff, cfg.CallbackTimeout, log)
	return oneshot.Run(context.Background(), cfg, deps, cb)
}

// Exactly one result per execution, the watchdog's, every time: a runtime
// that reports by itself like the SDKs (HTTP and STDIO) never sees
// CALLBACK_URL, so it never posts a second result, and never races the
// watchdog's. With PASS_CALLBACK_URL=true it does (the control case that
// shows the fixture would duplicate).
func TestOneResultPerExecutionWithAReportingRuntime(t *testing.T) {
	fixture := sdkRuntime(t)
	for _, tc := range []struct {
		mode, arg string
		pass      bool
		want      int
	}{
		{"HTTP", "http", false, 1},
		{"STDIO", "stdio", false, 1},
		{"STDIO", "stdio", true, 2},
	} {
		t.Run(fmt.Sprintf("%s/pass=%v", tc.mode, tc.pass), func(t *testing.T) {
			recv, err := receiver.Start(receiver.Behaviour{})
			if err != nil {
				t.Fatal(err)
			}
			defer recv.Close()
			runs := 10
			if tc.pass {
				runs = 1
			}
			for i := range runs {
				port, err := freeport.Pick()
				if err != nil {
					t.Fatal(err)
				}
				id := fmt.Sprintf("one-%s-%d", tc.arg, i)
				env := []string{
					"EXECUTION_MODE=" + tc.mode, "EXECUTION_ID=" + id, "CALLBACK_URL=" + recv.Base,
					"WATCHDOG_CMD=python3 " + fixture + " " + tc.arg,
					fmt.Sprintf("RUNTIME_URL=http://127.0.0.1:%d/invoke", port),
					`INVOCATION_PAYLOAD={"n":1}`, "KILL_GRACE_MS=500", "READY_TIMEOUT_MS=120000",
					"PATH=" + os.Getenv("PATH"), fmt.Sprintf("PASS_CALLBACK_URL=%v", tc.pass),
				}
				// READY_TIMEOUT_MS: a loaded machine may take seconds to start
				// Python; readiness is awaited, not assumed within a budget.
				if code := runOnce(t, env); code != oneshot.ExitDelivered {
					t.Fatalf("run %d: exit %d", i, code)
				}
				// The fixture posts before it answers, so any callback of its
				// own has arrived by the time the watchdog's was delivered.
				calls := recv.For(id)
				if len(calls) != tc.want {
					t.Fatalf("run %d: %d callbacks for %s, want %d", i, len(calls), id, tc.want)
				}
				watchdogs := 0
				for _, c := range calls {
					if !strings.Contains(string(c.Body), `"sdk":true`) {
						watchdogs++
						if !strings.Contains(string(c.Body), fmt.Sprintf(`"sdk_saw_callback_url":%v`, tc.pass)) {
							t.Errorf("run %d: the watchdog's result %s", i, c.Body)
						}
					}
				}
				if watchdogs != 1 {
					t.Errorf("run %d: %d of the callbacks are the watchdog's, want 1: %v", i, watchdogs, calls)
				}
			}
		})
	}
}
