package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nanofaas.dev/devkit/freeport"
	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog"
	"nanofaas.dev/watchdog/events"
)

// TestRecordsArePinned runs the real watchdog (one-shot, an HTTP runtime,
// LOG_LEVEL=debug) and decodes its JSON log records by name and attribute:
// the names and keys of this package, with the types documented, are what
// the watchdog writes. A change that breaks this test breaks every reader of
// the contract (the conformance suite's WD checks among them).
func TestRecordsArePinned(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "gohttp")
	build := exec.Command("go", "build", "-o", bin, "../../fixtures/gohttp")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cannot build the fixture runtime: %v\n%s", err, out)
	}
	recv, err := receiver.Start(receiver.Behaviour{})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"EXECUTION_MODE=HTTP",
		"WATCHDOG_CMD=" + bin,
		"RUNTIME_URL=http://127.0.0.1:" + strconv.Itoa(port) + "/invoke",
		"EXECUTION_ID=events-pin",
		"TRACE_ID=trace-events-pin",
		"CALLBACK_URL=" + recv.Base,
		"INVOCATION_PAYLOAD={\"x\":1}",
		"LOG_LEVEL=debug",
		"LOG_FORMAT=json",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := watchdog.Run(ctx, env, &stdout, &stderr); code != 0 {
		t.Fatalf("the watchdog exited with %d\n%s", code, stderr.String())
	}
	records := map[string]map[string]any{}
	for _, line := range strings.Split(stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if msg, ok := m["msg"].(string); ok {
			if _, seen := records[msg]; !seen {
				records[msg] = m
			}
		}
	}
	type attr struct {
		key  string
		kind string // bool, number, string
	}
	want := map[string][]attr{
		events.WatchdogStarting: {{events.KeyLifecycle, "string"}, {events.KeyProtocol, "string"}, {events.KeyPID1, "bool"}, {events.KeyReapAll, "bool"}},
		events.RuntimeReady:     {{events.KeyPID, "number"}, {events.KeyStartupMs, "number"}},
		events.InvocationFinished: {{events.KeySuccess, "bool"}, {events.KeyErrorCode, "string"}, {events.KeyDurationMs, "number"},
			{events.KeyExecutionID, "string"}},
	}
	for name, attrs := range want {
		rec, ok := records[name]
		if !ok {
			t.Errorf("no %q record in the log:\n%s", name, stderr.String())
			continue
		}
		for _, a := range attrs {
			v, ok := rec[a.key]
			var kind string
			switch v.(type) {
			case bool:
				kind = "bool"
			case float64:
				kind = "number"
			case string:
				kind = "string"
			}
			if !ok || kind != a.kind {
				t.Errorf("%q: attribute %q is %#v, want a %s", name, a.key, v, a.kind)
			}
		}
	}
	if rec := records[events.WatchdogStarting]; rec[events.KeyPID1] != false || rec[events.KeyLifecycle] != "one-shot" || rec[events.KeyProtocol] != "HTTP" {
		t.Errorf("%q: %v, want pid1 false (a test process), lifecycle one-shot, protocol HTTP", events.WatchdogStarting, rec)
	}
	if rec := records[events.InvocationFinished]; rec[events.KeySuccess] != true || rec[events.KeyExecutionID] != "events-pin" {
		t.Errorf("%q: %v, want success and the execution id", events.InvocationFinished, rec)
	}
}
