// Package cli is the emulator's command line (kong): the invoke and serve
// commands, and the hidden commands the emulator re-executes itself with
// (the real watchdog and the demo function).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
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
		kong.Vars{"version": version},
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
	ctx, stop := signalContext(r.ctx)
	defer stop()
	r.status = emulator.Invoke(ctx, emulator.InvokeOptions{
		Function: c.Function, Mode: c.Mode, Cmd: c.Cmd, Dir: c.Dir, Env: c.Env, Timeout: c.Timeout,
		Data: c.Data, File: c.File, Image: c.Image, Docker: c.Docker,
		ExecutionID: c.ExecutionID, TraceID: c.TraceID, Pretty: c.Pretty, Check: c.Check,
		Watchdog: wd, Self: self,
	}, r.io.Stdin, r.io.Stdout, r.io.Stderr)
	return nil
}

type serveCmd struct {
	Listen      string   `short:"l" default:"127.0.0.1:8090" help:"Address (host:port) of the control-plane API and of the callback receiver."`
	Function    []string `short:"f" sep:"none" help:"Function directory (holding function.json) or manifest file; repeatable. None: the embedded demo function." placeholder:"DIR" type:"path"`
	Docker      bool     `help:"Run every function in its manifest's image instead of on this machine (use --listen 0.0.0.0:PORT so containers can call back)."`
	Watch       bool     `short:"w" help:"Watch the functions' files: reload manifests, restart warm watchdogs on a change."`
	Env         []string `short:"e" sep:"none" help:"Extra environment variable for every function; repeatable." placeholder:"K=V"`
	History     int      `default:"1000" help:"How many executions to keep for GET /v1/executions."`
	Concurrency int      `default:"0" help:"Invocations that run at once (0: twice the CPUs, at least 4); more wait as queued."`
}

func (c *serveCmd) Help() string {
	return `Serves the nanofaas control-plane API, so tools written against it work
locally:

  POST /v1/functions/{name}:invoke    sync: {"input": <payload>, "metadata": {...}}
                                      -> 200 {executionId, status, output, error}
                                      and X-Execution-Id; 504 on a timeout
                                      (headers X-Trace-Id, X-Timeout-Ms honoured)
  POST /v1/functions/{name}:enqueue   async -> 202 {executionId, status: "queued"}
  GET  /v1/executions/{id}            status, output, error, startedAt,
                                      finishedAt, durations, max RSS, exit code
  GET  /v1/executions                 recent first (?function=, ?status=, ?limit=)
  GET  /v1/functions[/{name}]         the registered functions
  POST /v1/internal/executions/{id}:complete   the watchdogs' callbacks
  GET  /health

Unknown functions answer 404. Execution statuses: queued, running, success,
error, timeout. One-shot functions run one watchdog per invocation; warm
functions (mode WARM, or "warm": true) run in one watchdog in server mode
started at once, called through its POST /invoke, restarted if it dies.
Every completed execution is logged as one EXECUTION line with the fields of
invoke's REPORT line. SIGINT or SIGTERM: no new invocations, every watchdog
is stopped, exit 0.`
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
	ctx, stop := signalContext(r.ctx)
	defer stop()
	err = emulator.Serve(ctx, emulator.ServeOptions{
		Listen: c.Listen, Functions: c.Function, Docker: c.Docker, Watch: c.Watch, Env: c.Env,
		History: c.History, Concurrency: c.Concurrency, Watchdog: wd, Self: self,
	}, r.io.Stderr)
	if err != nil {
		return fmt.Errorf("cannot serve: %w", err)
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
