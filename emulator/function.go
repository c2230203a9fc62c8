// Package emulator is a local nanofaas control plane for function
// development: it runs functions through the real watchdog, one invocation at
// a time (invoke) or behind the control plane's HTTP API (serve), and reports
// what happened: output, logs, durations and the memory the processes used.
package emulator

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"nanofaas.dev/watchdog/config"
)

// Function is a function the emulator can run, from a manifest or flags.
type Function struct {
	Name string
	// Mode is HTTP, STDIO, FILE or WARM.
	Mode string
	// Command runs the function on this machine (empty: image only).
	Command string
	// Dir is the absolute working directory of Command.
	Dir string
	// Image runs the function with Docker.
	Image string
	// Env is given to the watchdog and the function on this machine.
	Env     map[string]string
	Timeout time.Duration
	// Warm functions run in a watchdog in server mode, kept between calls.
	Warm    bool
	Example *Example
	// Manifest is the absolute path of function.json ("" from flags).
	Manifest string
	// Resources limit the function's container (Docker only).
	Resources *ResourceSpec
	// Spec is the registration of a function registered through the API
	// (nil otherwise): it runs in its image, warm, as upstream deploys it,
	// with DeployEnv.
	Spec      *FunctionSpec
	DeployEnv map[string]string
}

// DemoPayload is the payload used when none is given and the function has
// no example.
var DemoPayload = json.RawMessage(`{"input":"hello"}`)

// DemoFunction is the embedded default function: this very binary,
// re-executed as a tiny STDIO function that uppercases "input".
func DemoFunction(self string) *Function {
	wd, _ := os.Getwd()
	return &Function{
		Name:    "demo",
		Mode:    "STDIO",
		Command: QuoteArg(self) + " " + DemoCommand,
		Dir:     wd,
		Env:     map[string]string{},
		Timeout: DefaultTimeout,
		Example: &Example{Payload: DemoPayload, Output: json.RawMessage(`{"input":"HELLO"}`)},
	}
}

// DemoCommand is the hidden subcommand that runs the demo function.
const DemoCommand = "demo-function"

// WatchdogCommand is the hidden subcommand that runs the real watchdog.
const WatchdogCommand = "watchdog-exec"

// Protocol is the watchdog's runtime protocol: WARM runs an HTTP runtime.
func (f *Function) Protocol() string {
	if f.Mode == "WARM" {
		return "HTTP"
	}
	return f.Mode
}

// DefaultPayload is what a function gets when no payload is given.
func (f *Function) DefaultPayload() json.RawMessage {
	if f.Example != nil && len(f.Example.Payload) > 0 {
		return f.Example.Payload
	}
	return DemoPayload
}

// Watched returns the directories whose changes should restart the function.
func (f *Function) Watched() []string {
	var dirs []string
	if f.Manifest != "" {
		dirs = append(dirs, filepath.Dir(f.Manifest))
	}
	if f.Dir != "" && (len(dirs) == 0 || dirs[0] != f.Dir) {
		dirs = append(dirs, f.Dir)
	}
	return dirs
}

// ParseEnv parses K=V pairs (from --env) into a map, refusing the variables
// the emulator sets itself.
func ParseEnv(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--env %q is not K=V", kv)
		}
		if err := checkEnvName(k); err != nil {
			return nil, fmt.Errorf("--env %s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// QuoteArg quotes s for WATCHDOG_CMD when it needs it (shell-style words).
func QuoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// watchdogVars are the variables the watchdog reads: an inherited value of
// one of them would change how the function runs, so the emulator drops
// them from its own environment before applying the function's.
var watchdogVars = func() map[string]bool {
	m := map[string]bool{}
	for _, v := range config.Variables() {
		m[v.Name] = true
	}
	return m
}()

// hostEnv builds a watchdog environment: this process's environment without
// watchdog variables, then defaults, the function's env, and set (which wins).
func hostEnv(defaults, fnEnv, set map[string]string) []string {
	merged := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if !watchdogVars[k] && k != "NANOFAAS_WATCHDOG" {
			merged[k] = v
		}
	}
	for _, m := range []map[string]string{defaults, fnEnv, set} {
		for k, v := range m {
			merged[k] = v
		}
	}
	return envList(merged)
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// ReadEnvFile reads KEY=VALUE lines (--env-file): blank lines and lines
// starting with # are skipped, an "export " prefix is allowed, and a value
// in matching single or double quotes loses them. The pairs are applied
// like --env.
func ReadEnvFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read --env-file: %w", err)
	}
	var pairs []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("--env-file %s, line %d: %q is not KEY=VALUE", path, i+1, line)
		}
		k = strings.TrimSpace(k)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		if err := checkEnvName(k); err != nil {
			return nil, fmt.Errorf("--env-file %s, line %d: %w", path, i+1, err)
		}
		pairs = append(pairs, k+"="+v)
	}
	return pairs, nil
}
