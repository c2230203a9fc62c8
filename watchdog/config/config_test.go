package config

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func oneShot(extra ...string) []string {
	return append([]string{"EXECUTION_ID=e1", "CALLBACK_URL=http://cp:8080/v1/internal/executions"}, extra...)
}

func TestDefaults(t *testing.T) {
	env := oneShot()
	got, err := New(env)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Lifecycle:          OneShot,
		Protocol:           ProtocolHTTP,
		Mode:               "HTTP",
		StdioProtocol:      StdioPerInvocation,
		ExecutionID:        "e1",
		CallbackURL:        "http://cp:8080/v1/internal/executions",
		Payload:            json.RawMessage("null"),
		Command:            []string{"java", "-jar", "/app/app.jar"},
		RuntimeURL:         "http://127.0.0.1:8080/invoke",
		HealthURL:          "http://127.0.0.1:8080/health",
		RuntimePort:        8080,
		ReadyTimeout:       10 * time.Second,
		Timeout:            30 * time.Second,
		KillGrace:          2 * time.Second,
		InputFile:          "/tmp/input.json",
		OutputFile:         "/tmp/output.json",
		MaxOutputBytes:     32 << 20,
		WarmPort:           8080,
		WarmIdleTimeout:    5 * time.Minute,
		WarmMaxInvocations: 0,
		WarmMaxConnections: 256,
		MaxPayloadBytes:    16 << 20,
		WarmConcurrency:    1,
		WarmQueueSize:      32,
		CallbackAttempts:   3,
		CallbackBackoff:    200 * time.Millisecond,
		CallbackTimeout:    10 * time.Second,
		FunctionName:       "unknown",
		LogLevel:           slog.LevelInfo,
		LogFormat:          "json",
		FunctionLogFormat:  "wrapped",
		Env:                env,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestEveryVariable(t *testing.T) {
	env := []string{
		"EXECUTION_ID=x-9", "CALLBACK_URL=https://cp/cb:complete", "EXECUTION_MODE=stdio",
		"TIMEOUT_MS=1500", "TRACE_ID=t-1", `WATCHDOG_CMD=python3 "/app/my handler.py"`,
		"RUNTIME_URL=http://127.0.0.1:9000/run", "HEALTH_URL=http://127.0.0.1:9000/ready",
		"READY_TIMEOUT_MS=250", "INPUT_FILE=/work/in", "OUTPUT_FILE=/work/out",
		`INVOCATION_PAYLOAD={"a":1}`, "WARM_PORT=9090", "WARM_IDLE_TIMEOUT_MS=0",
		"WARM_MAX_INVOCATIONS=7", "WARM_AUTH_TOKEN=tok", "WARM_MAX_CONNECTIONS=0", "MAX_PAYLOAD_BYTES=10",
		"MAX_OUTPUT_BYTES=20", "KILL_GRACE_MS=0", "CALLBACK_ATTEMPTS=9",
		"CALLBACK_BACKOFF_MS=1", "CALLBACK_TIMEOUT_MS=2", "FUNCTION_NAME=fn",
		"WATCHDOG_SUBREAPER=true", "LOG_LEVEL=debug", "LOG_FORMAT=TEXT",
		"WARM_CONCURRENCY=4", "WARM_QUEUE_SIZE=0", "WARM_QUEUE_TIMEOUT_MS=250", "PASS_CALLBACK_URL=true",
		"STDIO_PROTOCOL=Per-Invocation",
	}
	got, err := New(env)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Lifecycle: OneShot, Protocol: ProtocolSTDIO, Mode: "STDIO", StdioProtocol: StdioPerInvocation,
		ExecutionID: "x-9", CallbackURL: "https://cp/cb:complete", TraceID: "t-1",
		Payload: json.RawMessage(`{"a":1}`), Command: []string{"python3", "/app/my handler.py"},
		RuntimeURL: "http://127.0.0.1:9000/run", HealthURL: "http://127.0.0.1:9000/ready", RuntimePort: 9000,
		ReadyTimeout: 250 * time.Millisecond, Timeout: 1500 * time.Millisecond, KillGrace: 0,
		InputFile: "/work/in", OutputFile: "/work/out", MaxOutputBytes: 20,
		WarmPort: 9090, WarmIdleTimeout: 0, WarmMaxInvocations: 7, WarmAuthToken: "tok", WarmMaxConnections: 0, MaxPayloadBytes: 10,
		WarmConcurrency: 4, WarmQueueSize: 0, WarmQueueTimeout: 250 * time.Millisecond, PassCallbackURL: true,
		CallbackAttempts: 9, CallbackBackoff: time.Millisecond, CallbackTimeout: 2 * time.Millisecond,
		FunctionName: "fn", Subreaper: true, LogLevel: slog.LevelDebug, LogFormat: "text", FunctionLogFormat: "wrapped", Env: env,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLifecycles(t *testing.T) {
	for _, tc := range []struct {
		env         []string
		lifecycle   Lifecycle
		protocol    Protocol
		runtimeURL  string
		runtimePort int
	}{
		{oneShot("EXECUTION_MODE=HTTP"), OneShot, ProtocolHTTP, "http://127.0.0.1:8080/invoke", 8080},
		{oneShot("EXECUTION_MODE=FILE"), OneShot, ProtocolFILE, "http://127.0.0.1:8080/invoke", 8080},
		// WARM needs no execution id or callback; its runtime defaults to 8081.
		{[]string{"EXECUTION_MODE=WARM"}, Server, ProtocolHTTP, "http://127.0.0.1:8081/invoke", 8081},
		{[]string{"EXECUTION_MODE=STDIO", "WARM=true"}, Server, ProtocolSTDIO, "http://127.0.0.1:8081/invoke", 8081},
		{[]string{"EXECUTION_MODE=HTTP", "WARM=1", "RUNTIME_URL=http://127.0.0.1:7000/x"}, Server, ProtocolHTTP, "http://127.0.0.1:7000/x", 7000},
		{[]string{"EXECUTION_MODE=WARM", "RUNTIME_URL=http://localhost/x"}, Server, ProtocolHTTP, "http://localhost/x", 80},
	} {
		c, err := New(tc.env)
		if err != nil {
			t.Errorf("%v: %v", tc.env, err)
			continue
		}
		got := []any{c.Lifecycle, c.Protocol, c.RuntimeURL, c.RuntimePort}
		want := []any{tc.lifecycle, tc.protocol, tc.runtimeURL, tc.runtimePort}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tc.env, diff)
		}
	}
}

func TestHealthURLDerived(t *testing.T) {
	c, err := New(oneShot("RUNTIME_URL=http://10.0.0.1:9999/api/invoke?x=1"))
	if err != nil {
		t.Fatal(err)
	}
	if c.HealthURL != "http://10.0.0.1:9999/health" {
		t.Errorf("HealthURL = %q", c.HealthURL)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"CALLBACK_URL=http://cp/cb"}, `EXECUTION_ID is not set: one-shot mode needs the execution id`},
		{[]string{"EXECUTION_ID=e"}, `CALLBACK_URL is not set: one-shot mode needs`},
		{oneShot("EXECUTION_MODE=BATCH"), `EXECUTION_MODE="BATCH" is invalid: one of HTTP, STDIO, FILE, WARM`},
		{oneShot("WARM=maybe"), `WARM="maybe" is invalid: true or false`},
		{oneShot("TIMEOUT_MS=abc"), `TIMEOUT_MS="abc" is invalid: a whole number of milliseconds`},
		{oneShot("TIMEOUT_MS=-5"), `TIMEOUT_MS="-5" is invalid: a whole number of milliseconds`},
		{oneShot("TIMEOUT_MS=0"), `TIMEOUT_MS="0" is invalid: a number of milliseconds greater than 0`},
		{oneShot("READY_TIMEOUT_MS=1.5"), `READY_TIMEOUT_MS="1.5" is invalid`},
		{oneShot("KILL_GRACE_MS=x"), `KILL_GRACE_MS="x" is invalid`},
		{oneShot("WATCHDOG_CMD='unclosed"), `WATCHDOG_CMD="'unclosed" is invalid: a command line with balanced quotes (the single quote at position 1 is not closed)`},
		{oneShot("WATCHDOG_CMD=   "), `WATCHDOG_CMD="   " is invalid: a non-empty command`},
		{oneShot("RUNTIME_URL=ftp://x/invoke"), `RUNTIME_URL="ftp://x/invoke" is invalid: an absolute http:// or https:// URL with a host (scheme "ftp")`},
		{oneShot("RUNTIME_URL=http:///invoke"), `RUNTIME_URL="http:///invoke" is invalid: an absolute http:// or https:// URL with a host (no host)`},
		{oneShot("RUNTIME_URL=http://h:99999/x"), `RUNTIME_URL="http://h:99999/x" is invalid: a URL whose port is from 1 to 65535`},
		{oneShot("HEALTH_URL=nonsense"), `HEALTH_URL="nonsense" is invalid`},
		{[]string{"EXECUTION_ID=e", "CALLBACK_URL=cp:8080"}, `CALLBACK_URL="cp:8080" is invalid`},
		{oneShot("INVOCATION_PAYLOAD={bad"), `INVOCATION_PAYLOAD="{bad" is invalid: one JSON document`},
		{oneShot("INPUT_FILE=relative.json"), `INPUT_FILE="relative.json" is invalid: an absolute file path`},
		{oneShot("EXECUTION_MODE=FILE", "INPUT_FILE=/tmp/a", "OUTPUT_FILE=/tmp/a"), `OUTPUT_FILE="/tmp/a" is invalid: a path different from INPUT_FILE`},
		{oneShot("MAX_OUTPUT_BYTES=0"), `MAX_OUTPUT_BYTES="0" is invalid: a whole number greater than 0`},
		{oneShot("MAX_PAYLOAD_BYTES=lots"), `MAX_PAYLOAD_BYTES="lots" is invalid`},
		{oneShot("WARM_PORT=0"), `WARM_PORT="0" is invalid: a TCP port from 1 to 65535`},
		{oneShot("WARM_PORT=70000"), `WARM_PORT="70000" is invalid: a TCP port`},
		{oneShot("WARM_IDLE_TIMEOUT_MS=-1"), `WARM_IDLE_TIMEOUT_MS="-1" is invalid`},
		{oneShot("WARM_MAX_INVOCATIONS=-1"), `WARM_MAX_INVOCATIONS="-1" is invalid: a whole number, 0 or more`},
		{oneShot("WARM_MAX_CONNECTIONS=many"), `WARM_MAX_CONNECTIONS="many" is invalid: a whole number, 0 or more`},
		{oneShot("WARM_CONCURRENCY=0"), `WARM_CONCURRENCY="0" is invalid: a whole number greater than 0`},
		{oneShot("WARM_CONCURRENCY=5000"), `WARM_CONCURRENCY="5000" is invalid: a whole number from 1 to 1024`},
		{oneShot("WARM_QUEUE_SIZE=-1"), `WARM_QUEUE_SIZE="-1" is invalid: a whole number, 0 or more`},
		{oneShot("WARM_QUEUE_SIZE=100000"), `WARM_QUEUE_SIZE="100000" is invalid: a whole number from 0 to 65536`},
		{oneShot("WARM_QUEUE_TIMEOUT_MS=soon"), `WARM_QUEUE_TIMEOUT_MS="soon" is invalid`},
		{oneShot("PASS_CALLBACK_URL=maybe"), `PASS_CALLBACK_URL="maybe" is invalid: true or false`},
		{oneShot("CALLBACK_ATTEMPTS=0"), `CALLBACK_ATTEMPTS="0" is invalid: a whole number greater than 0`},
		{oneShot("CALLBACK_BACKOFF_MS=fast"), `CALLBACK_BACKOFF_MS="fast" is invalid`},
		{oneShot("CALLBACK_TIMEOUT_MS=0"), `CALLBACK_TIMEOUT_MS="0" is invalid: a number of milliseconds greater than 0`},
		{oneShot("WATCHDOG_SUBREAPER=yes"), `WATCHDOG_SUBREAPER="yes" is invalid: true or false`},
		{oneShot("LOG_LEVEL=loud"), `LOG_LEVEL="loud" is invalid: debug, info, warn or error`},
		{oneShot("LOG_FORMAT=xml"), `LOG_FORMAT="xml" is invalid: json or text`},
		{[]string{"EXECUTION_MODE=WARM", "RUNTIME_URL=http://127.0.0.1:8080/invoke"}, `RUNTIME_URL="http://127.0.0.1:8080/invoke" is invalid: a port other than WARM_PORT=8080`},
		{[]string{"EXECUTION_MODE=WARM", "WARM_PORT=8081"}, `RUNTIME_URL="http://127.0.0.1:8081/invoke" is invalid: a port other than WARM_PORT=8081`},
	} {
		_, err := New(tc.env)
		if err == nil {
			t.Errorf("%v: no error, want %q", tc.env, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%v:\n got %q\nwant prefix %q", tc.env, err, tc.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error spans lines: %q", tc.env, err)
		}
	}
}

// TestVariablesDocumented checks that every variable New reads is in the
// documentation table, and the other way round.
func TestVariablesDocumented(t *testing.T) {
	documented := map[string]bool{}
	for _, v := range Variables() {
		if documented[v.Name] {
			t.Errorf("%s documented twice", v.Name)
		}
		documented[v.Name] = true
		if v.Help == "" {
			t.Errorf("%s has no help", v.Name)
		}
	}
	p := &parser{vals: map[string]string{}}
	for name := range documented {
		if name == "HEALTH_URL" || name == "EXECUTION_ID" || name == "CALLBACK_URL" || name == "TRACE_ID" || name == "WARM_AUTH_TOKEN" || name == "CALLBACK_ALLOWED_PREFIXES" {
			continue
		}
		if p.str(name) == "" {
			t.Errorf("%s has no default in the table", name)
		}
	}
}
