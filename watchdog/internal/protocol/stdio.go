package protocol

import (
	"context"
	"time"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/logging"
	"nanofaas.dev/watchdog/internal/process"
	"nanofaas.dev/watchdog/result"
)

// STDIO runs the function once per invocation: the payload on stdin, one
// JSON document expected on stdout, stderr passed through to the log.
type STDIO struct {
	cfg  config.Config
	deps Deps
}

// Invoke runs one invocation.
func (s *STDIO) Invoke(ctx context.Context, inv Invocation) result.Result {
	start := time.Now()
	payload := []byte(inv.Payload)
	if payload == nil {
		payload = []byte("null")
	}
	c, err := s.deps.Procs.StartChild(process.Options{
		Argv:          s.cfg.Command,
		Env:           childEnv(s.cfg, invocationEnv(inv)...),
		Stdin:         payload,
		CaptureStdout: s.cfg.MaxOutputBytes,
		StderrSink:    logging.ForExecution(s.deps.Stderr, inv.ExecutionID),
	})
	if err != nil {
		return spawnFailure(err).Took(start)
	}
	if timeout, interrupted := waitChild(ctx, c, inv, s.cfg.KillGrace); timeout != nil {
		return timeout.Took(start)
	} else if out, overflow := c.Stdout(); overflow {
		return result.Failure(result.FunctionError, "stdout exceeded MAX_OUTPUT_BYTES=%d; the function was killed", s.cfg.MaxOutputBytes).Took(start)
	} else if !c.Exit().Success() {
		return exitFailure(c, interrupted).Took(start)
	} else if doc, bad := checkOutput("stdout", out); bad != nil {
		return bad.WithExitCode(0).Took(start)
	} else {
		return result.Success(doc).WithExitCode(0).Took(start)
	}
}
