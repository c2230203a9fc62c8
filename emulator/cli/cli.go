// Package cli is the emulator's command line (kong): the invoke and serve
// commands, and the hidden commands the emulator re-executes itself with
// (the real watchdog and the demo function).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"nanofaas.dev/emulator"
	"nanofaas.dev/watchdog"
)

// Streams are the command's standard streams.
type Streams struct {
	Stdin          *os.File
	Stdout, Stderr io.Writer
}

// run is what every command gets: the context, the streams and where to
// put the exit status.
type run struct {
	ctx    context.Context
	io     Streams
	status int
}

// Globals are the flags every command accepts.
type Globals struct {
	Watchdog string `help:"Watchdog binary to run instead of the built-in one (this binary re-executed as 'emulator watchdog-exec')." env:"NANOFAAS_WATCHDOG" placeholder:"PATH"`
}

// watchdog resolves --watchdog.
func (g *Globals) watchdog() (emulator.Watchdog, error) {
	if g.Watchdog == "" {
		return emulator.SelfWatchdog()
	}
	return emulator.ExternalWatchdog(g.Watchdog)
}

type cli struct {
	Globals
	Version kong.VersionFlag `help:"Print the version and exit."`

	Invoke       invokeCmd       `cmd:"" help:"Run a function once through the real watchdog: its output on stdout, logs and a REPORT line on stderr."`
	Serve        serveCmd        `cmd:"" help:"Serve the nanofaas control-plane API on this machine and run the registered functions through real watchdogs."`
	Manifests    manifestsCmd    `cmd:"" help:"Write a function's Kubernetes manifests (warm: Deployment, Service, HPA; one-shot: a Job) on stdout."`
	WatchdogExec watchdogExecCmd `cmd:"" name:"watchdog-exec" hidden:"" help:"Run the watchdog, configured from the environment (used by the emulator itself)."`
	DemoFunction demoCmd         `cmd:"" name:"demo-function" hidden:"" help:"The embedded demo STDIO function (used by the emulator itself)."`
}

const description = `A local nanofaas control plane for function development. It runs functions
through the real watchdog, exactly as a cluster would, and shows what happened:
the output, every log line of the watchdog and the function (prefixed with the
execution id), durations and the memory the processes really used.

Functions are described by a manifest, function.json, in the function's
directory:

  {"name": "python-stdio", "mode": "STDIO", "command": "python3 handler.py",
   "dir": ".", "image": "nanofaas/example-python-stdio:latest",
   "env": {"K": "V"}, "timeout_ms": 30000, "warm": false,
   "example": {"payload": {"input": "hello"}, "output": {"input": "HELLO"}}}

mode is HTTP, STDIO, FILE or WARM (a warm HTTP runtime); command runs on this
machine in "dir" (relative to the manifest); image is used with Docker. Only
name, mode and command (or image) are required.

Exit status: 0 success, 1 the function (or its watchdog) failed, 2 usage or
configuration error (bad flags, manifest, payload, watchdog configuration, or
Docker unusable), 130 interrupted.`

// exitRequest carries kong's own exits (--help, --version).
type exitRequest struct{ code int }

// Main runs the emulator with args (without the program name) and returns
// its exit status.
func Main(ctx context.Context, version string, args []string, streams Streams) (status int) {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("emulator"),
		kong.Description(description),
		kong.Vars{"version": resolveVersion(version), "default_callback": emulator.DefaultKubeCallbackURL},
		kong.Writers(streams.Stdout, streams.Stderr),
		kong.Exit(func(code int) { panic(exitRequest{code}) }),
		kong.ConfigureHelp(kong.HelpOptions{NoAppDescFormat: true}),
	)
	if err != nil {
		fmt.Fprintf(streams.Stderr, "emulator: %v\n", err)
		return emulator.ExitUsage
	}
	defer func() {
		if r := recover(); r != nil {
			req, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			status = req.code
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(streams.Stderr, "emulator: %v (see emulator --help)\n", err)
		return emulator.ExitUsage
	}
	r := &run{ctx: ctx, io: streams}
	if err := kctx.Run(r, &c.Globals); err != nil {
		fmt.Fprintf(streams.Stderr, "emulator: %v\n", err)
		var ue *emulator.UsageError
		if errors.As(err, &ue) {
			return emulator.ExitUsage
		}
		return emulator.ExitFunctionError
	}
	return r.status
}

// resolveVersion is the version given at build time or, in a build from a
// git checkout ("dev"), the module version and VCS revision Go recorded.
func resolveVersion(v string) string {
	if v != "" && v != "dev" {
		return v
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	rev, modified, at := "", false, ""
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		case "vcs.time":
			at = s.Value
		}
	}
	if rev == "" {
		if mv := info.Main.Version; mv != "" && mv != "(devel)" {
			return mv
		}
		return "dev (no version control information: build with 'go build' in a git checkout, or set -ldflags -X main.version=...)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	out := "dev-" + rev
	if modified {
		out += "-dirty"
	}
	if at != "" {
		out += " (" + at + ")"
	}
	return out
}

// resources builds the Docker limits of --cpus and --memory (nil: none).
func resources(cpus, memory string) *emulator.ResourceSpec {
	if cpus == "" && memory == "" {
		return nil
	}
	return &emulator.ResourceSpec{CPU: cpus, Memory: memory}
}

// envWithFile puts the --env-file pairs before the --env ones (which win).
func envWithFile(file string, env []string) ([]string, error) {
	if file == "" {
		return env, nil
	}
	pairs, err := emulator.ReadEnvFile(file)
	if err != nil {
		return nil, &emulator.UsageError{Err: err}
	}
	return append(pairs, env...), nil
}

// signalContext ends when the emulator gets SIGINT or SIGTERM.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

type invokeCmd struct {
	Function    string        `short:"f" help:"Function directory (holding function.json) or manifest file." placeholder:"DIR" type:"path"`
	Mode        string        `help:"Execution mode: HTTP, STDIO, FILE or WARM (with --cmd; default HTTP, the watchdog's)." placeholder:"MODE"`
	Cmd         string        `help:"Command that runs the function on this machine, split shell-style (instead of a manifest)." placeholder:"COMMAND"`
	Dir         string        `help:"Working directory of the command (default: the manifest's dir, or the current directory)." placeholder:"DIR" type:"path"`
	Env         []string      `short:"e" sep:"none" help:"Extra environment variable for the watchdog and the function; repeatable." placeholder:"K=V"`
	EnvFile     string        `help:"Read extra variables from a file of KEY=VALUE lines (# comments, optional quotes); --env wins." placeholder:"FILE" type:"path"`
	CPUs        string        `name:"cpus" help:"CPU limit of the container (Docker only), e.g. 0.5 or 250m; replaces the manifest's resources.cpu." placeholder:"CPUS"`
	Memory      string        `help:"Memory limit of the container (Docker only), e.g. 256Mi; replaces the manifest's resources.memory." placeholder:"SIZE"`
	Timeout     time.Duration `help:"Invocation timeout, e.g. 5s (default: the manifest's timeout_ms, or 30s)." placeholder:"DURATION"`
	Data        string        `short:"d" help:"Payload, one JSON document." placeholder:"JSON"`
	File        string        `help:"Read the payload from a file; - reads stdin." placeholder:"FILE"`
	Image       string        `help:"Run the function inside this Docker image (its watchdog and configuration) instead of on this machine." placeholder:"IMAGE"`
	Docker      bool          `help:"Run the function inside the image named by its manifest."`
	ExecutionID string        `help:"Execution id to use (default: a fresh exec-<16 hex digits>)." placeholder:"ID"`
	TraceID     string        `help:"Trace id passed to the watchdog and the function (TRACE_ID)." placeholder:"ID"`
	Pretty      bool          `help:"Indent the output JSON."`
	Check       bool          `help:"Compare the output with the manifest's example output; exit 1 when they differ."`
}

func (c *invokeCmd) Help() string {
	return `Runs the function once. Without --function or --cmd, an embedded demo
function runs (this binary as a STDIO function that upper-cases "input"), so
'emulator invoke' works on any machine with Go.

The payload comes from --data, --file, or stdin when stdin is a pipe or a file
(a terminal is never read); with none, the manifest's example payload is used,
else {"input":"hello"}.

By default the watchdog runs on this machine in one-shot mode: EXECUTION_ID is
generated and CALLBACK_URL points at a receiver the emulator starts on
127.0.0.1 for the call. WARM functions (and payloads over 120 KiB, which do not
fit in INVOCATION_PAYLOAD) run in a watchdog in server mode called once with
POST /invoke. With --image or --docker the watchdog runs in a container
(docker run --add-host host.docker.internal:host-gateway) and calls back to
the emulator on host.docker.internal; the container is removed afterwards.

Standard output carries the function's output JSON and nothing else. Standard
error carries every line of the watchdog and the function, prefixed with
[execution id], then, last, one line:

  REPORT execution_id=... status=success|FUNCTION_ERROR|TIMEOUT|... duration_ms=N init_ms=N max_rss_kb=N max_rss_method=M exit_code=N

duration_ms is the invocation as the watchdog timed it; init_ms is the rest of
the wall time from starting the watchdog to receiving its result (watchdog and
container start, an HTTP runtime's start until healthy, the callback);
max_rss_kb is the function's own peak memory: the largest VmHWM of a single
process below the watchdog, sampled every 5 ms while they run
(max_rss_method=vmhwm-sampled; a function that lives less than that may have
none), or the container's cgroup peak with Docker (cgroup); exit_code is the
function process's exit code. "-" means unknown.`
}

func (c *invokeCmd) Run(r *run, g *Globals) error {
	wd, err := g.watchdog()
	if err != nil {
		return &emulator.UsageError{Err: err}
	}
	self, err := emulator.SelfPath()
	if err != nil {
		return err
	}
	env, err := envWithFile(c.EnvFile, c.Env)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(r.ctx)
	defer stop()
	r.status = emulator.Invoke(ctx, emulator.InvokeOptions{
		Function: c.Function, Mode: c.Mode, Cmd: c.Cmd, Dir: c.Dir, Env: env, Timeout: c.Timeout, Resources: resources(c.CPUs, c.Memory),
		Data: c.Data, File: c.File, Image: c.Image, Docker: c.Docker,
		ExecutionID: c.ExecutionID, TraceID: c.TraceID, Pretty: c.Pretty, Check: c.Check,
		Watchdog: wd, Self: self,
	}, r.io.Stdin, r.io.Stdout, r.io.Stderr)
	return nil
}

type serveCmd struct {
	Listen      string   `short:"l" default:"127.0.0.1:8090" help:"Address of the control-plane API and of the callback receiver: HOST:PORT, :PORT (every address) or PORT (127.0.0.1:PORT)."`
	Function    []string `short:"f" sep:"none" help:"Function directory (holding function.json) or manifest file; repeatable. None: the embedded demo function." placeholder:"DIR" type:"path"`
	Docker      bool     `help:"Run every function in its manifest's image instead of on this machine (containers call back on Docker's bridge gateway)."`
	Watch       bool     `short:"w" help:"Watch the functions' files: reload manifests, restart warm watchdogs on a change."`
	Env         []string `short:"e" sep:"none" help:"Extra environment variable for every function; repeatable." placeholder:"K=V"`
	EnvFile     string   `help:"Read extra variables for every function from a file of KEY=VALUE lines; --env wins." placeholder:"FILE" type:"path"`
	CPUs        string   `name:"cpus" help:"CPU limit of each container (--docker), e.g. 0.5 or 250m, for manifests without resources.cpu." placeholder:"CPUS"`
	Memory      string   `help:"Memory limit of each container (--docker), e.g. 256Mi, for manifests without resources.memory." placeholder:"SIZE"`
	History     int      `default:"1000" help:"How many executions to keep for GET /v1/executions."`
	Concurrency int      `default:"0" help:"Invocations that run at once (0: twice the CPUs, at least 4); more wait as queued."`
}

func (c *serveCmd) Help() string {
	return `Serves the nanofaas control-plane API 0.5.0 as upstream defines it, so
the nanofaas CLI and tools written against it work locally. Its OpenAPI
document is served at GET /v1/openapi.yaml.

  POST   /v1/functions                 register a FunctionSpec: its image runs
                                       with Docker, warm, as upstream deploys it
                                       -> 201 FunctionResponse, 409 when it exists
  GET    /v1/functions[/{name}]        FunctionResponse(s), local ones included
  DELETE /v1/functions/{name}          -> 204, 404 when unknown
  POST   /v1/functions/{name}:invoke   {"input": <payload>, "metadata": {...}}
                                       -> 200 {executionId, status, output, error}
                                       and X-Execution-Id; 408 on a timeout
                                       (Idempotency-Key, X-Trace-Id, X-Timeout-Ms)
  POST   /v1/functions/{name}:enqueue  -> 202 {executionId, status: "queued"}
  GET    /v1/executions/{id}           status, output, error, timestamps and
                                       the measured figures
  GET    /v1/executions                recent first (?function=, ?status=, ?limit=)
  POST   /v1/internal/executions/{id}:complete   the watchdogs' callbacks
  GET    /health
  GET    /v1/executions/{id}/input      the payload it was invoked with
  GET    /v1/executions/{id}/logs       its log lines (watchdog and function)
  GET    /v1/events                     server-sent events: executions as they
                                       change, their log lines, functions
  GET    /ui/                           a live page of all of the above (its
                                       address is printed at start)

Errors are {"error": CODE, "message": ...}; 405 with Allow for another
method, 415 for a Content-Type other than JSON, 413 over 16 MiB.
One-shot functions run one watchdog per invocation; warm functions (mode
WARM, or "warm": true) run in one watchdog in server mode started at once,
called through its POST /invoke, restarted if it dies. Every completed
execution is logged as one EXECUTION line with the fields of invoke's REPORT
line. SIGINT or SIGTERM: no new invocations, every watchdog is stopped,
exit 0.`
}

func (c *serveCmd) Run(r *run, g *Globals) error {
	wd, err := g.watchdog()
	if err != nil {
		return &emulator.UsageError{Err: err}
	}
	self, err := emulator.SelfPath()
	if err != nil {
		return err
	}
	if c.Docker {
		if _, err := emulator.CheckDocker(); err != nil {
			return &emulator.UsageError{Err: err}
		}
	}
	env, err := envWithFile(c.EnvFile, c.Env)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(r.ctx)
	defer stop()
	err = emulator.Serve(ctx, emulator.ServeOptions{
		Listen: c.Listen, Functions: c.Function, Docker: c.Docker, Watch: c.Watch, Env: env, Resources: resources(c.CPUs, c.Memory),
		History: c.History, Concurrency: c.Concurrency, Watchdog: wd, Self: self,
	}, r.io.Stderr)
	if err != nil {
		return fmt.Errorf("cannot serve: %w", err)
	}
	return nil
}

type manifestsCmd struct {
	Function    string   `short:"f" required:"" help:"Function directory (holding function.json) or manifest file." placeholder:"DIR" type:"path"`
	Image       string   `help:"Image the cluster pulls (default: the manifest's image)." placeholder:"IMAGE"`
	Cmd         string   `help:"WATCHDOG_CMD inside the image (default: the image's own)." placeholder:"COMMAND"`
	Namespace   string   `short:"n" help:"Namespace written into every object (default: none, kubectl's current one)." placeholder:"NS"`
	CallbackURL string   `help:"CALLBACK_URL: the control plane's callback base URL (default: ${default_callback})." placeholder:"URL"`
	ExecutionID string   `help:"One-shot Job: EXECUTION_ID (default: a fresh exec-<16 hex digits>)." placeholder:"ID"`
	Data        string   `short:"d" help:"One-shot Job: INVOCATION_PAYLOAD, one JSON document (default: the manifest's example payload)." placeholder:"JSON"`
	Writable    []string `sep:"none" help:"Directory the runtime writes to, mounted from an emptyDir (the root filesystem is read-only); repeatable. FILE mode gets INPUT_FILE's and OUTPUT_FILE's." placeholder:"DIR"`
	MaxReplicas int      `default:"5" help:"Warm: the autoscaler's maximum replicas."`
}

func (c *manifestsCmd) Help() string {
	return `Writes the function's manifests as one YAML stream, in the shape the nanofaas
control plane generates, hardened (non-root, read-only root filesystem, no
capabilities, probes on the watchdog's endpoints, a grace period that covers
the drain). See deploy/kubernetes/README.md for every choice.

  emulator manifests -f examples/python-fastapi-warm --image registry.example/fn:1 | kubectl apply -f -
  emulator manifests -f examples/bash-file -d '{"input":"hi"}' | kubectl create -f -`
}

func (c *manifestsCmd) Run(r *run) error {
	fn, err := emulator.LoadManifest(c.Function)
	if err != nil {
		return &emulator.UsageError{Err: err}
	}
	image := c.Image
	if image == "" {
		image = fn.Image
	}
	if image == "" {
		return &emulator.UsageError{Err: fmt.Errorf("cannot write manifests: %s has no \"image\": give --image IMAGE", c.Function)}
	}
	var payload json.RawMessage
	if c.Data != "" {
		payload = json.RawMessage(c.Data)
	}
	out, err := emulator.KubeManifests(fn, emulator.KubeOptions{
		Image: image, Namespace: c.Namespace, Command: c.Cmd, CallbackURL: c.CallbackURL,
		ExecutionID: c.ExecutionID, Payload: payload, Writable: c.Writable, MaxReplicas: c.MaxReplicas,
	})
	if err != nil {
		return err
	}
	if _, err := r.io.Stdout.Write(out); err != nil {
		return fmt.Errorf("cannot write manifests: %w", err)
	}
	return nil
}

type watchdogExecCmd struct{}

func (c *watchdogExecCmd) Run(r *run) error {
	r.status = watchdog.Run(context.Background(), os.Environ(), r.io.Stdout, r.io.Stderr)
	return nil
}

type demoCmd struct{}

func (c *demoCmd) Run(r *run) error {
	r.status = emulator.RunDemo(r.io.Stdin, r.io.Stdout, r.io.Stderr)
	return nil
}
