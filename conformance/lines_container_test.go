package conformance_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"nanofaas.dev/conformance"
	"nanofaas.dev/watchdog/result"
)

// linesExamples are the examples whose function is kept warm with
// STDIO_PROTOCOL=lines (their manifests say "stdio_protocol": "lines").
var linesExamples = []string{"node-stdio-warm", "python-stdio-warm"}

// TestContainerWarmLines serves invocations from each STDIO_PROTOCOL=lines
// example container: the manifest's example answers the expected output, a
// sequence of invocations is served without a restart, a refused payload
// answers 500 FUNCTION_ERROR and the function goes on serving, and docker
// stop ends the container at once with exit code 0.
//
// Covers: WD-LINES-001, RT-LINES-001, RT-LINES-002
func TestContainerWarmLines(t *testing.T) {
	t.Parallel()
	for _, dir := range linesExamples {
		t.Run(dir, func(t *testing.T) {
			d, ex, _ := requireExample(t, dir)
			c := startContainer(t, d, conformance.ContainerSpec{Image: ex.Image, Expose: []string{"8080/tcp"}})
			base, err := c.Endpoint(context.Background(), "8080/tcp")
			if err != nil {
				t.Fatal(err)
			}
			waitHealthy(t, base+"/health", 30*time.Second)
			invoke := func(payload json.RawMessage) (int, result.Result) {
				t.Helper()
				body, _ := json.Marshal(map[string]any{"execution_id": randomID("lines"), "payload": payload})
				resp, err := http.Post(base+"/invoke", "application/json", strings.NewReader(string(body)))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				res, err := result.DecodeFrom(resp.Body)
				if err != nil {
					t.Fatalf("POST /invoke: %v", err)
				}
				return resp.StatusCode, res
			}
			for i := 0; i < 5; i++ {
				status, res := invoke(ex.Example.Payload)
				if status != http.StatusOK || !res.Success {
					t.Fatalf("call %d: %d %+v", i+1, status, res)
				}
				if diff, _ := conformance.DiffJSON(ex.Example.Output, res.Output); diff != "" {
					t.Errorf("call %d: output (-want +got):\n%s", i+1, diff)
				}
			}
			status, res := invoke(json.RawMessage(badPayload))
			if status != http.StatusInternalServerError || res.ErrorCode() != result.FunctionError || !strings.Contains(res.Error.Message, `whose field "input" is a string`) {
				t.Errorf("bad payload: %d %+v, want 500 FUNCTION_ERROR saying why", status, res)
			}
			if status, res := invoke(ex.Example.Payload); status != http.StatusOK || !res.Success {
				t.Errorf("after the bad payload: %d %+v", status, res)
			}
			metrics, err := http.Get(base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			text, _ := io.ReadAll(metrics.Body)
			metrics.Body.Close()
			for _, reason := range []string{"exited", "protocol_error", "timeout"} {
				if !strings.Contains(string(text), `reason="`+reason+`"} 0`) {
					t.Errorf("the function was restarted (%s):\n%s", reason, text)
				}
			}
			t.Logf("docker stop took %v", stopQuickly(t, c))
		})
	}
}
