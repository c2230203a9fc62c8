package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"nanofaas.dev/watchdog/config"
)

// ManifestFile is the name of a function's manifest inside its directory.
const ManifestFile = "function.json"

// DefaultTimeout is a function's timeout when its manifest does not set one
// (the watchdog's TIMEOUT_MS default).
const DefaultTimeout = 30 * time.Second

// Modes are the accepted values of a manifest's "mode" (and of --mode).
var Modes = []string{"HTTP", "STDIO", "FILE", "WARM"}

// manifest is function.json as written; Function is what it resolves to.
type manifest struct {
	Name      string                     `json:"name"`
	Mode      string                     `json:"mode"`
	Command   *string                    `json:"command"`
	Dir       *string                    `json:"dir"`
	Image     *string                    `json:"image"`
	Env       map[string]json.RawMessage `json:"env"`
	TimeoutMs *int64                     `json:"timeout_ms"`
	Warm      *bool                      `json:"warm"`
	Example   *Example                   `json:"example"`
	Resources *ResourceSpec              `json:"resources"`
	// StdioProtocol becomes the watchdog's STDIO_PROTOCOL.
	StdioProtocol *string `json:"stdio_protocol"`
}

// manifestFields lists the accepted fields, for error messages.
const manifestFields = "name, mode, command, dir, image, env, timeout_ms, warm, example, resources, stdio_protocol"

// Example is a manifest's sample invocation.
type Example struct {
	Payload json.RawMessage `json:"payload"`
	Output  json.RawMessage `json:"output"`
}

// ManifestError is a problem with one field of a manifest.
type ManifestError struct {
	File  string
	Field string
	// Problem says what is wrong and what is accepted.
	Problem string
}

// Error names the manifest, the field and what is wrong with it.
func (e *ManifestError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.File, e.Problem)
	}
	return fmt.Sprintf("%s: field %q: %s", e.File, e.Field, e.Problem)
}

var (
	envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// reservedEnv are variables the emulator sets itself: a manifest (or --env)
// that sets them is refused, with the field to use instead.
var reservedEnv = map[string]string{
	"EXECUTION_ID":       "the emulator generates one per invocation",
	"CALLBACK_URL":       "the emulator points it at its own callback receiver",
	"INVOCATION_PAYLOAD": "give the payload with --data, --file or stdin (invoke) or the request body (serve)",
	"EXECUTION_MODE":     `use the manifest's "mode" field (or --mode)`,
	"WATCHDOG_CMD":       `use the manifest's "command" field (or --cmd)`,
	"WARM":               `use "mode": "WARM" or "warm": true`,
	"WARM_PORT":          "the emulator picks a free port for each warm watchdog",
	"TIMEOUT_MS":         `use the manifest's "timeout_ms" field (or --timeout)`,
}

// LoadManifest reads and validates the manifest at path, which is a function
// directory (holding function.json) or the manifest file itself.
func LoadManifest(path string) (*Function, error) {
	file := path
	if info, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("cannot read function %s: %w", path, err)
	} else if info.IsDir() {
		file = filepath.Join(path, ManifestFile)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %s: %w", file, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &ManifestError{File: file, Problem: "no such file: a function directory must hold a " + ManifestFile}
		}
		return nil, fmt.Errorf("cannot read manifest: %w", err)
	}
	return ParseManifest(file, abs, data)
}

// ParseManifest validates a manifest's content. display names the file in
// messages; abs is its absolute path, which relative "dir" values start from.
func ParseManifest(display, abs string, data []byte) (*Function, error) {
	fail := func(field, format string, args ...any) error {
		return &ManifestError{File: display, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, decodeError(display, data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fail("", "more than one JSON document: a manifest is one JSON object")
	}

	switch {
	case m.Name == "":
		return nil, fail("name", "missing: %s, e.g. \"python-stdio\"", nameRule)
	case !functionNamePattern.MatchString(m.Name):
		return nil, fail("name", "%q is not accepted: %s (the control plane's rule)", m.Name, nameRule)
	}
	rawMode := m.Mode
	m.Mode = strings.ToUpper(strings.TrimSpace(m.Mode))
	if m.Mode == "" {
		return nil, fail("mode", "missing: one of %s", strings.Join(Modes, ", "))
	}
	if !validMode(m.Mode) {
		return nil, fail("mode", "%q is not accepted: one of %s (in any case)", rawMode, strings.Join(Modes, ", "))
	}
	fn := &Function{
		Name:     m.Name,
		Mode:     m.Mode,
		Manifest: abs,
		Env:      map[string]string{},
		Timeout:  DefaultTimeout,
		Warm:     m.Mode == "WARM",
		Example:  m.Example,
	}
	if m.Command != nil {
		if strings.TrimSpace(*m.Command) == "" {
			return nil, fail("command", "empty: the command that runs the function on this machine, e.g. \"python3 handler.py\" (omit the field for an image-only function)")
		}
		if _, err := config.SplitCommand(*m.Command); err != nil {
			return nil, fail("command", "%q cannot be split into arguments: %v", *m.Command, err)
		}
		fn.Command = *m.Command
	}
	dir := "."
	if m.Dir != nil {
		if *m.Dir == "" {
			return nil, fail("dir", "empty: a directory relative to the manifest (default \".\")")
		}
		dir = *m.Dir
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(filepath.Dir(abs), dir)
	}
	if info, err := os.Stat(dir); err != nil {
		return nil, fail("dir", "%s does not exist: the command's working directory, relative to the manifest", dir)
	} else if !info.IsDir() {
		return nil, fail("dir", "%s is not a directory", dir)
	}
	fn.Dir = dir
	if m.Image != nil {
		if strings.TrimSpace(*m.Image) == "" || strings.ContainsAny(*m.Image, " \t\n") {
			return nil, fail("image", "%q is not accepted: a Docker image reference such as nanofaas/example-python-stdio:latest", *m.Image)
		}
		fn.Image = *m.Image
	}
	if fn.Command == "" && fn.Image == "" {
		return nil, fail("command", "missing: a function needs a command (to run on this machine) or an image (to run with Docker)")
	}
	keys := make([]string, 0, len(m.Env))
	for k := range m.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := checkEnvName(k); err != nil {
			return nil, fail("env", "%v", err)
		}
		var v string
		if err := json.Unmarshal(m.Env[k], &v); err != nil {
			return nil, fail("env."+k, "got %s, expected a string (quote numbers and booleans: \"30000\", \"true\")", bytes.TrimSpace(m.Env[k]))
		}
		fn.Env[k] = v
	}
	if m.TimeoutMs != nil {
		if *m.TimeoutMs <= 0 || *m.TimeoutMs > MaxTimeoutMs {
			return nil, fail("timeout_ms", "%d is not accepted: a whole number of milliseconds from 1 to %d (the control plane's limit)", *m.TimeoutMs, MaxTimeoutMs)
		}
		fn.Timeout = time.Duration(*m.TimeoutMs) * time.Millisecond
	}
	if m.Warm != nil {
		if m.Mode == "WARM" && !*m.Warm {
			return nil, fail("warm", "false contradicts \"mode\": \"WARM\", which is always warm; use mode HTTP for a one-shot HTTP runtime")
		}
		fn.Warm = fn.Warm || *m.Warm
	}
	if m.Resources != nil {
		if _, err := m.Resources.dockerFlags(); err != nil {
			return nil, fail("resources", "%v", err)
		}
		fn.Resources = m.Resources
	}
	if m.StdioProtocol != nil {
		switch p := *m.StdioProtocol; {
		case p != "lines" && p != "per-invocation":
			return nil, fail("stdio_protocol", "%q is not accepted: \"per-invocation\" (the default) or \"lines\" (see docs/warm-scripts.md)", p)
		case p == "lines" && (m.Mode != "STDIO" || !fn.Warm):
			return nil, fail("stdio_protocol", "\"lines\" needs \"mode\": \"STDIO\" and \"warm\": true: the process is kept between invocations only in server mode")
		}
		if _, set := fn.Env["STDIO_PROTOCOL"]; set {
			return nil, fail("stdio_protocol", "given twice: drop env.STDIO_PROTOCOL")
		}
		fn.Env["STDIO_PROTOCOL"] = *m.StdioProtocol
	}
	if m.Example != nil && len(m.Example.Payload) == 0 {
		return nil, fail("example", "has no \"payload\": {\"payload\": <JSON>, \"output\": <JSON, optional>}")
	}
	return fn, nil
}

// checkEnvName accepts a variable name a function may be given.
func checkEnvName(k string) error {
	if !envNamePattern.MatchString(k) {
		return fmt.Errorf("%q is not a variable name: letters, digits and '_', not starting with a digit", k)
	}
	if why, ok := reservedEnv[k]; ok {
		return fmt.Errorf("%s is set by the emulator: %s", k, why)
	}
	return nil
}

func validMode(m string) bool {
	for _, v := range Modes {
		if v == m {
			return true
		}
	}
	return false
}

// decodeError turns a json decoding error into a message naming the field,
// or the line and column of a syntax error.
func decodeError(file string, data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, max(syn.Offset-1, 0))
		return &ManifestError{File: file, Problem: fmt.Sprintf("line %d, column %d: %v: a manifest is one JSON object", line, col, syn)}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &ManifestError{File: file, Problem: fmt.Sprintf("got a JSON %s: a manifest is one JSON object with the fields %s", typ.Value, manifestFields)}
		}
		return &ManifestError{File: file, Field: field, Problem: fmt.Sprintf("got a JSON %s, expected %s", typ.Value, expectedType(field))}
	case errors.Is(err, io.EOF):
		return &ManifestError{File: file, Problem: "empty file: a manifest is one JSON object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &ManifestError{File: file, Problem: "unexpected end of file: the JSON object is not closed"}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &ManifestError{File: file, Field: strings.Trim(f, `"`), Problem: "unknown field: accepted fields are " + manifestFields}
	}
	return &ManifestError{File: file, Problem: err.Error()}
}

func expectedType(field string) string {
	switch {
	case field == "timeout_ms":
		return "a whole number of milliseconds"
	case field == "warm":
		return "true or false"
	case field == "env":
		return "an object of string values, e.g. {\"LOG_LEVEL\": \"debug\"}"
	case strings.HasPrefix(field, "env."):
		return "a string (quote numbers and booleans: \"30000\", \"true\")"
	case field == "example":
		return "an object {\"payload\": ..., \"output\": ...}"
	}
	return "a string"
}

// position converts a byte offset to a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}
