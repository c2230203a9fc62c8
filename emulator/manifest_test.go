package emulator

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseManifestResolves(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, ManifestFile)
	tests := []struct {
		name string
		json string
		want Function
	}{{
		name: "minimal STDIO",
		json: `{"name":"a","mode":"STDIO","command":"python3 handler.py"}`,
		want: Function{Name: "a", Mode: "STDIO", Command: "python3 handler.py", Dir: dir, Env: map[string]string{}, Timeout: DefaultTimeout, Manifest: file},
	}, {
		name: "every field",
		json: `{"name":"b.2_x","mode":"FILE","command":"./h.sh","dir":"src","image":"img:1","env":{"K":"V","EMPTY":""},"timeout_ms":1500,"warm":true,"example":{"payload":{"input":"x"},"output":{"input":"X"}}}`,
		want: Function{Name: "b.2_x", Mode: "FILE", Command: "./h.sh", Dir: filepath.Join(dir, "src"), Image: "img:1",
			Env: map[string]string{"K": "V", "EMPTY": ""}, Timeout: 1500 * time.Millisecond, Warm: true, Manifest: file,
			Example: &Example{Payload: json.RawMessage(`{"input":"x"}`), Output: json.RawMessage(`{"input":"X"}`)}},
	}, {
		name: "WARM is warm",
		json: `{"name":"w","mode":"WARM","command":"node app.js"}`,
		want: Function{Name: "w", Mode: "WARM", Command: "node app.js", Dir: dir, Env: map[string]string{}, Timeout: DefaultTimeout, Warm: true, Manifest: file},
	}, {
		name: "image only",
		json: `{"name":"i","mode":"HTTP","image":"nanofaas/x:latest"}`,
		want: Function{Name: "i", Mode: "HTTP", Image: "nanofaas/x:latest", Dir: dir, Env: map[string]string{}, Timeout: DefaultTimeout, Manifest: file},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseManifest(file, file, []byte(tt.json))
			if err != nil {
				t.Fatalf("ParseManifest: %v", err)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("function (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseManifestRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, ManifestFile)
	tests := []struct {
		json  string
		field string
		says  string
	}{
		{`{"name":"a","mode":"STDIO","command":"x","extra":1}`, "extra", "unknown field: accepted fields are name, mode"},
		{`{"mode":"STDIO","command":"x"}`, "name", "missing"},
		{`{"name":"has space","mode":"STDIO","command":"x"}`, "name", `"has space" is not accepted`},
		{`{"name":"a:b","mode":"STDIO","command":"x"}`, "name", "is not accepted"},
		{`{"name":"a","command":"x"}`, "mode", "missing: one of HTTP, STDIO, FILE, WARM"},
		{`{"name":"a","mode":"LAMBDA","command":"x"}`, "mode", `"LAMBDA" is not accepted`},
		{`{"name":"a","mode":"STDIO","command":""}`, "command", "empty"},
		{`{"name":"a","mode":"STDIO","command":"python3 'unclosed"}`, "command", "cannot be split into arguments"},
		{`{"name":"a","mode":"STDIO"}`, "command", "missing: a function needs a command"},
		{`{"name":"a","mode":"STDIO","command":"x","dir":"nowhere"}`, "dir", "does not exist"},
		{`{"name":"a","mode":"STDIO","command":"x","dir":"function.json"}`, "dir", "is not a directory"},
		{`{"name":"a","mode":"STDIO","command":"x","image":"has space"}`, "image", "is not accepted"},
		{`{"name":"a","mode":"STDIO","command":"x","env":{"1BAD":"v"}}`, "env", `"1BAD" is not a variable name`},
		{`{"name":"a","mode":"STDIO","command":"x","env":{"WATCHDOG_CMD":"v"}}`, "env", `use the manifest's "command" field`},
		{`{"name":"a","mode":"STDIO","command":"x","env":{"N":30}}`, "env.N", "got 30, expected a string"},
		{`{"name":"a","mode":"STDIO","command":"x","timeout_ms":0}`, "timeout_ms", "from 1 to 300000"},
		{`{"name":"a","mode":"STDIO","command":"x","timeout_ms":1.5}`, "timeout_ms", "expected a whole number of milliseconds"},
		{`{"name":"a","mode":"WARM","command":"x","warm":false}`, "warm", "contradicts"},
		{`{"name":"a","mode":"STDIO","command":"x","example":{"output":1}}`, "example", `has no "payload"`},
		{`{"name":"a","mode":"STDIO","command":"x","warm":true,"stdio_protocol":"line"}`, "stdio_protocol", `"line" is not accepted`},
		{`{"name":"a","mode":"STDIO","command":"x","stdio_protocol":"lines"}`, "stdio_protocol", `needs "mode": "STDIO" and "warm": true`},
		{`{"name":"a","mode":"WARM","command":"x","stdio_protocol":"lines"}`, "stdio_protocol", `needs "mode": "STDIO"`},
		{`{"name":"a","mode":"STDIO","command":"x","warm":true,"stdio_protocol":"lines","env":{"STDIO_PROTOCOL":"lines"}}`, "stdio_protocol", "given twice"},
		{`{"name":"a","mode":"STDIO","command":"x"} {}`, "", "more than one JSON document"},
		{`["name"]`, "", "got a JSON array: a manifest is one JSON object"},
		{``, "", "empty file"},
		{`{"name":"a",`, "", "unexpected end of file"},
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			_, err := ParseManifest("fn/function.json", file, []byte(tt.json))
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("got %v, want a *ManifestError", err)
			}
			got := struct{ File, Field string }{me.File, me.Field}
			want := struct{ File, Field string }{"fn/function.json", tt.field}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("error location (-want +got):\n%s", diff)
			}
			if !strings.Contains(me.Problem, tt.says) {
				t.Errorf("message %q does not say %q", me.Error(), tt.says)
			}
		})
	}
}

func TestReport(t *testing.T) {
	code := 3
	tests := []struct {
		r    Report
		want string
	}{
		{Report{ExecutionID: "exec-1", Status: "success", DurationMs: 12, InitMs: 5, MaxRSSKB: 11000, MaxRSSMethod: MethodSampled, ExitCode: new(int)},
			"REPORT execution_id=exec-1 status=success duration_ms=12 init_ms=5 max_rss_kb=11000 max_rss_method=vmhwm-sampled exit_code=0"},
		{Report{ExecutionID: "exec-2", Status: "FUNCTION_ERROR", DurationMs: 40, InitMs: 0, MaxRSSKB: 9000, MaxRSSMethod: MethodSampled, ExitCode: &code},
			"REPORT execution_id=exec-2 status=FUNCTION_ERROR duration_ms=40 init_ms=0 max_rss_kb=9000 max_rss_method=vmhwm-sampled exit_code=3"},
		{Report{ExecutionID: "exec-3", Status: "CONFIG_ERROR", DurationMs: -1, InitMs: -1, MaxRSSKB: -1},
			"REPORT execution_id=exec-3 status=CONFIG_ERROR duration_ms=- init_ms=- max_rss_kb=- max_rss_method=- exit_code=-"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.r.Line()); diff != "" {
			t.Errorf("Line (-want +got):\n%s", diff)
		}
	}
}

func TestPrefixWriterSplitsLines(t *testing.T) {
	var b strings.Builder
	w := newPrefixWriter(&b, "[x] ")
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\r\nthree"))
	_, _ = w.Write([]byte(strings.Repeat("L", maxLogLine+3) + "\n"))
	w.Flush()
	want := "[x] one\n[x] two\n[x] three" + strings.Repeat("L", maxLogLine-5) + "\n[x] " + strings.Repeat("L", 8) + "\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}
