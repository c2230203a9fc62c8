// Package supervise wires the watchdog together: configuration, logging, process
// management, PID 1 duties and the lifecycle.
package supervise

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/events"
	"nanofaas.dev/watchdog/internal/callback"
	"nanofaas.dev/watchdog/internal/logging"
	"nanofaas.dev/watchdog/internal/oneshot"
	"nanofaas.dev/watchdog/internal/process"
	"nanofaas.dev/watchdog/internal/protocol"
	"nanofaas.dev/watchdog/internal/server"
)

// ExitConfig is the exit status for a bad configuration.
const ExitConfig = 2

// flushAtExit bounds how long the watchdog waits, when it exits, for its
// last log records to be taken by whoever reads its output.
const flushAtExit = 5 * time.Second

// forwarded are the signals passed on to the function's process group.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// Run runs the watchdog with the given environment and returns its exit status.
func Run(ctx context.Context, env []string, stdout, stderr io.Writer) int {
	cfg, err := config.New(env)
	if err != nil {
		fmt.Fprintf(stderr, "watchdog: configuration error: %v (see watchdog --help)\n", err)
		return ExitConfig
	}
	tuneRuntime()
	protectErr := protectSecrets()
	// Nothing the watchdog writes may block it: a container log that
	// nobody reads must not stall invocations (see logging.AsyncWriter).
	errOut := logging.NewAsyncWriter(stderr, 0)
	stdOut := logging.NewAsyncWriter(stdout, 0)
	defer closeBoth(stdOut, errOut)
	log := logging.New(errOut, cfg.LogLevel, cfg.LogFormat)
	errOut.Notice, stdOut.Notice = dropNotice(cfg, "stderr"), dropNotice(cfg, "stdout")
	if cfg.Lifecycle == config.OneShot {
		log = log.With("execution_id", cfg.ExecutionID)
		if cfg.TraceID != "" {
			log = log.With("trace_id", cfg.TraceID)
		}
	}

	if protectErr != nil {
		log.Warn("the function may read WARM_AUTH_TOKEN from the watchdog's /proc files", "error", protectErr.Error())
	}

	reapAll := os.Getpid() == 1 || cfg.Subreaper
	if reapAll {
		if err := process.BecomeSubreaper(); err != nil {
			log.Warn("cannot become a child subreaper; orphans of the function will not be reaped here", "error", err.Error())
		}
	}
	procs := process.NewManager(log, reapAll)
	defer procs.Close()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopSignals := forwardSignals(procs, log, cancel, cfg.Lifecycle == config.Server)
	defer stopSignals()

	fnOut := logging.NewFunctionOutput(stdOut, cfg.LogFormat, cfg.FunctionLogFormat, "stdout")
	fnErr := logging.NewFunctionOutput(errOut, cfg.LogFormat, cfg.FunctionLogFormat, "stderr")
	if cfg.Lifecycle == config.OneShot {
		fnOut, fnErr = fnOut.ForExecution(cfg.ExecutionID), fnErr.ForExecution(cfg.ExecutionID)
	}
	deps := protocol.Deps{Procs: procs, Log: log, Stdout: fnOut, Stderr: fnErr,
		LogDropped: func() uint64 { return errOut.Dropped() + stdOut.Dropped() }}
	cb := callback.NewClient(cfg.CallbackAttempts, cfg.CallbackBackoff, cfg.CallbackTimeout, log)
	log.Debug(events.WatchdogStarting, events.KeyLifecycle, string(cfg.Lifecycle), events.KeyProtocol, string(cfg.Protocol),
		events.KeyPID1, os.Getpid() == 1, events.KeyReapAll, reapAll)
	if cfg.Lifecycle == config.Server {
		return server.Run(ctx, cfg, deps, cb)
	}
	return oneshot.Run(ctx, cfg, deps, cb)
}

// forwardSignals passes the forwarded signals to the function's group; the
// ones that mean "stop" also cancel the watchdog's context.
//
// In server mode (drain) the first stop signal is not forwarded: it starts
// the drain, which lets the invocation in flight complete and then stops the
// runtime's group itself (SIGTERM, grace, SIGKILL). Forwarding it would kill
// a warm runtime, or a per-invocation process, in the middle of the call the
// drain promises to finish. A second stop signal is forwarded, so an
// operator can still cut the drain short.
func forwardSignals(procs *process.Manager, log *slog.Logger, cancel context.CancelCauseFunc, drain bool) func() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	done := make(chan struct{})
	go func() {
		stopping := false
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				sig := s.(syscall.Signal)
				stop := sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == syscall.SIGQUIT
				if stop && drain && !stopping {
					log.Info("signal received; draining: the invocation in flight completes, then the runtime is stopped", "signal", sig.String())
				} else {
					log.Info("signal received; forwarding to the function", "signal", sig.String())
					procs.Signal(sig)
				}
				if stop {
					stopping = true
					cancel(fmt.Errorf("received %v", sig))
				}
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// dropNotice returns the record written once a stream takes bytes again
// after some were dropped (see logging.AsyncWriter).
func dropNotice(cfg config.Config, stream string) func(uint64) []byte {
	return func(n uint64) []byte {
		var b bytes.Buffer
		logging.New(&b, cfg.LogLevel, cfg.LogFormat).Warn("log lines dropped: nothing read the watchdog's "+stream+" for a while (counted in watchdog_log_lines_dropped_total)",
			"stream", stream, "dropped", n)
		return b.Bytes()
	}
}

// closeBoth writes out what the two writers still hold, each waiting at
// most flushAtExit for its reader, at the same time.
func closeBoth(a, b *logging.AsyncWriter) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Close(flushAtExit)
	}()
	b.Close(flushAtExit)
	<-done
}
