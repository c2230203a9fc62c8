package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"nanofaas.dev/watchdog/procio"
)

// Exit statuses of the emulator's commands.
const (
	ExitOK = 0
	// ExitFunctionError: the function (or its watchdog) failed.
	ExitFunctionError = 1
	// ExitUsage: bad flags, manifest, payload or watchdog configuration.
	ExitUsage = 2
	// ExitInterrupted: stopped by SIGINT or SIGTERM.
	ExitInterrupted = 130
)

// InvokeOptions are the invoke command's inputs.
type InvokeOptions struct {
	// Function is a function directory or manifest ("" for flags or the demo).
	Function string
	Mode     string
	Cmd      string
	Dir      string
	Env      []string
	Timeout  time.Duration
	// Data, File: the payload (File "-" is stdin).
	Data string
	File string
	// Image runs the function in this image; Docker uses the manifest's.
	Image  string
	Docker bool
	// ExecutionID and TraceID default to a fresh id and none.
	ExecutionID string
	TraceID     string
	Pretty      bool
	// Check compares the output with the manifest's example output.
	Check bool
	// Resources limit the container (Docker only); they replace the
	// manifest's.
	Resources *ResourceSpec
	Watchdog  Watchdog
	// Self is this binary, for the demo function.
	Self string
}

// UsageError is a mistake in how the emulator was called (exit status 2).
type UsageError struct{ Err error }

// Error is the message of the wrapped error.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ResolveFunction builds the function to invoke from a manifest, from flags,
// or the embedded demo function.
func ResolveFunction(o InvokeOptions) (*Function, error) {
	var fn *Function
	switch {
	case o.Function != "":
		f, err := LoadManifest(o.Function)
		if err != nil {
			return nil, &UsageError{Err: err}
		}
		fn = f
	case o.Cmd != "":
		dir := o.Dir
		if dir == "" {
			dir = "."
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, usagef("--dir %s: %v", dir, err)
		}
		fn = &Function{Name: "function", Mode: "HTTP", Dir: abs, Env: map[string]string{}, Timeout: DefaultTimeout}
	case o.Mode != "":
		return nil, usagef("--mode needs --cmd (the command that runs the function) or --function")
	case o.Docker:
		return nil, usagef("--docker runs the manifest's image: it needs --function (or give --image IMG)")
	default:
		fn = DemoFunction(o.Self)
		if o.Dir != "" {
			return nil, usagef("--dir needs --cmd")
		}
	}
	if o.Cmd != "" {
		fn.Command = o.Cmd
	}
	if o.Dir != "" {
		abs, err := filepath.Abs(o.Dir)
		if err != nil {
			return nil, usagef("--dir %s: %v", o.Dir, err)
		}
		if info, err := os.Stat(abs); err != nil || !info.IsDir() {
			return nil, usagef("--dir %s is not a directory", o.Dir)
		}
		fn.Dir = abs
	}
	if o.Mode != "" {
		m := strings.ToUpper(o.Mode)
		if !validMode(m) {
			return nil, usagef("--mode %q is not accepted: one of %s", o.Mode, strings.Join(Modes, ", "))
		}
		fn.Mode = m
		fn.Warm = m == "WARM" || fn.Warm
	}
	if o.Timeout < 0 {
		return nil, usagef("--timeout %v: must be positive", o.Timeout)
	}
	if o.Timeout > 0 {
		if o.Timeout < time.Millisecond {
			return nil, usagef("--timeout %v: must be at least 1ms", o.Timeout)
		}
		fn.Timeout = o.Timeout
	}
	if o.Image != "" {
		fn.Image = o.Image
	}
	if o.Resources != nil {
		if _, err := o.Resources.dockerFlags(); err != nil {
			return nil, &UsageError{Err: err}
		}
		fn.Resources = o.Resources
	}
	if (o.Image != "" || o.Docker) && fn.Image == "" {
		return nil, usagef("function %s has no \"image\" in its manifest: give one with --image IMG", fn.Name)
	}
	return fn, nil
}

// ReadPayload returns the payload from --data, --file (or "-" for stdin),
// or stdin when it is a pipe or a file; nil when none was given.
// A hint is written to hint when stdin has not ended after a while (a pipe
// nobody closes), saying how to give the payload otherwise.
func ReadPayload(o InvokeOptions, stdin *os.File, hint io.Writer) (json.RawMessage, error) {
	if o.Data != "" && o.File != "" {
		return nil, usagef("give the payload with --data or --file, not both")
	}
	var data []byte
	var from string
	switch {
	case o.Data != "":
		data, from = []byte(o.Data), "--data"
	case o.File == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, usagef("cannot read the payload from stdin: %v", err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, usagef("--file -: stdin is empty, expected one JSON document")
		}
		data, from = b, "stdin"
	case o.File != "":
		b, err := os.ReadFile(o.File)
		if err != nil {
			return nil, usagef("cannot read the payload: %v", err)
		}
		data, from = b, o.File
	case stdinHasData(stdin):
		b, err := readSlowly(stdin, hint)
		if err != nil {
			return nil, usagef("cannot read the payload from stdin: %v", err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, nil
		}
		data, from = b, "stdin"
	default:
		return nil, nil
	}
	return CompactJSON(data, from)
}

// stdinHint is how long reading stdin may take before the hint is shown.
const stdinHint = 3 * time.Second

// readSlowly reads r to its end, telling hint once if that takes long.
func readSlowly(r io.Reader, hint io.Writer) ([]byte, error) {
	t := time.AfterFunc(stdinHint, func() {
		fmt.Fprintf(hint, "emulator: waiting for the payload on stdin (it is a pipe that has not been closed); give it with --data or --file, or run with </dev/null for the default payload\n")
	})
	defer t.Stop()
	return io.ReadAll(r)
}

// CompactJSON checks that data is one JSON document and compacts it.
func CompactJSON(data []byte, from string) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return nil, usagef("the payload from %s is not JSON: %v", from, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, usagef("the payload from %s holds more than one JSON document", from)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, v); err != nil {
		return nil, usagef("the payload from %s is not JSON: %v", from, err)
	}
	return out.Bytes(), nil
}

// stdinHasData reports whether stdin is a pipe, a socket or a regular file:
// a terminal or /dev/null (character devices) is never read, so invoke
// does not wait for typing.
func stdinHasData(f *os.File) bool {
	if f == nil {
		return false
	}
	info, err := f.Stat()
	if err != nil {
		return false
	}
	m := info.Mode()
	return m&os.ModeCharDevice == 0 && (m&os.ModeNamedPipe != 0 || m&os.ModeSocket != 0 || m.IsRegular())
}

// Invoke runs the invoke command: one invocation, the output on stdout, the
// logs and the REPORT line on stderr. It returns the exit status.
func Invoke(ctx context.Context, o InvokeOptions, stdin *os.File, stdout, stderr io.Writer) int {
	stderr = procio.NewSyncWriter(stderr)
	fn, err := ResolveFunction(o)
	if err != nil {
		fmt.Fprintf(stderr, "emulator: %v\n", err)
		return ExitUsage
	}
	env, err := ParseEnv(o.Env)
	if err != nil {
		fmt.Fprintf(stderr, "emulator: %v\n", err)
		return ExitUsage
	}
	payload, err := ReadPayload(o, stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "emulator: %v\n", err)
		return ExitUsage
	}
	if payload == nil {
		payload = fn.DefaultPayload()
	}
	var expected any
	if o.Check {
		if fn.Example == nil || len(fn.Example.Output) == 0 {
			fmt.Fprintf(stderr, "emulator: --check needs an \"example\" with an \"output\" in the manifest\n")
			return ExitUsage
		}
		if err := json.Unmarshal(fn.Example.Output, &expected); err != nil {
			fmt.Fprintf(stderr, "emulator: the manifest's example output is not JSON: %v\n", err)
			return ExitUsage
		}
	}
	id := o.ExecutionID
	if id == "" {
		id = NewExecutionID()
	} else if !ValidExecutionID(id) {
		fmt.Fprintf(stderr, "emulator: --execution-id %q: use letters, digits, '-', '_' or '.' (at most 128)\n", id)
		return ExitUsage
	}
	docker := o.Image != "" || o.Docker
	runner := &Runner{Watchdog: o.Watchdog, Docker: docker, Log: stderr}
	log := runner.prefix(id)

	addr, host := "127.0.0.1:0", "127.0.0.1"
	if docker {
		addr, host = "0.0.0.0:0", DockerHost
	}
	recv, err := StartReceiver(addr, func(format string, args ...any) { log.Printf("emulator: "+format, args...) })
	if err != nil {
		fmt.Fprintf(stderr, "emulator: cannot start the callback receiver: %v\n", err)
		return ExitFunctionError
	}
	defer recv.Close()
	base := recv.URL(host)

	where := "on this machine in " + fn.Dir + " with " + o.Watchdog.describe()
	if docker {
		where = "in image " + fn.Image
	}
	kind := fn.Mode
	if fn.Warm && fn.Mode != "WARM" {
		kind += ", warm"
	}
	log.Printf("emulator: invoking %s (%s) %s", fn.Name, kind, where)

	out := runner.RunOnce(ctx, fn, Invocation{ID: id, TraceID: o.TraceID, Payload: payload, Env: env}, recv, base)

	status := ExitOK
	switch {
	case out.Status == StatusSuccess:
		output := []byte(out.Result.Output)
		if o.Pretty {
			var b bytes.Buffer
			if json.Indent(&b, output, "", "  ") == nil {
				output = b.Bytes()
			}
		}
		if _, err := fmt.Fprintf(stdout, "%s\n", output); err != nil {
			log.Printf("emulator: cannot write the output: %v", err)
			status = ExitFunctionError
		}
		if o.Check {
			var got any
			_ = json.Unmarshal(out.Result.Output, &got)
			if !reflect.DeepEqual(got, expected) {
				log.Printf("CHECK FAILED: the output differs from the manifest's example output %s", fn.Example.Output)
				status = ExitFunctionError
			} else {
				log.Printf("check passed: the output equals the manifest's example output")
			}
		}
	case out.Status == StatusConfigError:
		log.Printf("%s: %s", out.Status, out.ErrorMessage())
		status = ExitUsage
	default:
		// The function's stderr was printed as it came: the summary
		// leaves out the tail the watchdog quotes.
		msg, _, _ := strings.Cut(out.ErrorMessage(), "; stderr: ")
		log.Printf("%s: %s", out.Status, msg)
		for _, h := range hints(fn, o, out) {
			log.Printf("hint: %s", h)
		}
		status = ExitFunctionError
	}
	if ctx.Err() != nil {
		status = ExitInterrupted
	}
	fmt.Fprintln(stderr, out.Report.Line())
	return status
}

// describe names the watchdog for humans.
func (w Watchdog) describe() string {
	if len(w.Args) == 2 && w.Args[1] == WatchdogCommand {
		return "the built-in watchdog"
	}
	return "watchdog " + w.Path
}

// hints explain the failures a first run often meets, and their fix.
func hints(fn *Function, o InvokeOptions, out Outcome) []string {
	msg := out.ErrorMessage()
	var hs []string
	if strings.Contains(msg, "Cannot find module") || strings.Contains(msg, "No module named") ||
		strings.Contains(msg, "ModuleNotFoundError") || strings.Contains(msg, "ClassNotFoundException") {
		hs = append(hs, "a dependency of the function is not installed: for the examples, run scripts/examples-host.sh (it installs what they need on this machine)")
	}
	if out.Status == "STARTUP_ERROR" && fn.Protocol() == "HTTP" && out.Report.Runtime == "host" {
		if out.Result != nil && out.Result.ExitCode != nil || strings.Contains(msg, "exited") {
			if o.Mode == "" && o.Function == "" {
				hs = append(hs, "the command ran in HTTP mode (the default) and exited instead of serving: if it reads the payload on stdin and writes the result on stdout, add --mode STDIO (--mode FILE for INPUT_FILE/OUTPUT_FILE)")
			}
		} else {
			hs = append(hs, "an HTTP function must listen on the port the watchdog gives it: read the PORT environment variable (RUNTIME_URL holds the whole URL), not a fixed port")
		}
	}
	return hs
}
