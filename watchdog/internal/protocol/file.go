package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/logging"
	"nanofaas.dev/watchdog/internal/process"
	"nanofaas.dev/watchdog/result"
)

// File runs the function once per invocation: the payload in INPUT_FILE, the
// result expected in OUTPUT_FILE, stdout and stderr passed through to the log.
type File struct {
	cfg  config.Config
	deps Deps
}

// Invoke runs one invocation.
func (f *File) Invoke(ctx context.Context, inv Invocation) result.Result {
	start := time.Now()
	defer os.Remove(f.cfg.InputFile)
	defer os.Remove(f.cfg.OutputFile)
	if err := os.Remove(f.cfg.OutputFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// On a read-only filesystem (or a directory the watchdog may not
		// enter) the removal fails even when there is nothing to remove:
		// call the file stale only when it is there.
		if _, statErr := os.Lstat(f.cfg.OutputFile); statErr != nil {
			return result.Failure(result.SpawnError, "OUTPUT_FILE %s cannot be written: %v (make its directory writable, or set OUTPUT_FILE)", f.cfg.OutputFile, err).Took(start)
		}
		return result.Failure(result.SpawnError, "cannot remove the stale OUTPUT_FILE %s: %v", f.cfg.OutputFile, err).Took(start)
	}
	payload := []byte(inv.Payload)
	if payload == nil {
		payload = []byte("null")
	}
	if err := writeInput(f.cfg.InputFile, payload); err != nil {
		return result.Failure(result.SpawnError, "cannot write INPUT_FILE %s: %v (make its directory writable, or set INPUT_FILE)", f.cfg.InputFile, err).Took(start)
	}
	env := append(invocationEnv(inv), "INPUT_FILE="+f.cfg.InputFile, "OUTPUT_FILE="+f.cfg.OutputFile)
	c, err := f.deps.Procs.StartChild(process.Options{
		Argv:       f.cfg.Command,
		Env:        childEnv(f.cfg, env...),
		StdoutSink: logging.ForExecution(f.deps.Stdout, inv.ExecutionID),
		StderrSink: logging.ForExecution(f.deps.Stderr, inv.ExecutionID),
	})
	if err != nil {
		return spawnFailure(err).Took(start)
	}
	timeout, interrupted := waitChild(ctx, c, inv, f.cfg.KillGrace)
	if timeout != nil {
		return timeout.Took(start)
	}
	if !c.Exit().Success() {
		return exitFailure(c, interrupted).Took(start)
	}
	out, bad := f.readOutput()
	if bad != nil {
		return bad.WithExitCode(0).Took(start)
	}
	doc, bad := checkOutput("OUTPUT_FILE "+f.cfg.OutputFile, out)
	if bad != nil {
		return bad.WithExitCode(0).Took(start)
	}
	return result.Success(doc).WithExitCode(0).Took(start)
}

// writeInput writes the payload to a new file at path. Whatever is there
// first is removed, not written through: a symbolic link (or a hard link)
// planted at INPUT_FILE, by a previous function say, would otherwise make
// the watchdog overwrite its target. The file is then created exclusively
// and without following links, so one put back in between is refused.
func writeInput(path string, data []byte) error {
	if err := syscall.Unlink(path); err != nil && err != syscall.ENOENT {
		// On a read-only filesystem the removal fails even when there is
		// nothing to remove: then the creation says what is wrong.
		if _, statErr := os.Lstat(path); !errors.Is(statErr, fs.ErrNotExist) {
			return &fs.PathError{Op: "remove", Path: path, Err: err}
		}
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: something created it again between its removal and the watchdog's write (is a process of an earlier invocation still running?)", err)
	}
	if err != nil {
		return err
	}
	_, err = file.Write(data)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	return err
}

// readOutput reads OUTPUT_FILE up to the output limit. It refuses anything
// but a regular file, so a FIFO or a device cannot hang or flood the watchdog.
func (f *File) readOutput() ([]byte, *result.Result) {
	fail := func(format string, args ...any) ([]byte, *result.Result) {
		r := result.Failure(result.FunctionError, format, args...)
		return nil, &r
	}
	file, err := os.OpenFile(f.cfg.OutputFile, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fail("OUTPUT_FILE %s was not created: the function exited 0 without writing it", f.cfg.OutputFile)
	}
	if err != nil {
		return fail("cannot open OUTPUT_FILE %s: %v", f.cfg.OutputFile, err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return fail("cannot stat OUTPUT_FILE %s: %v", f.cfg.OutputFile, err)
	}
	if !info.Mode().IsRegular() {
		return fail("OUTPUT_FILE %s is not a regular file (%s)", f.cfg.OutputFile, info.Mode().Type())
	}
	limit := f.cfg.MaxOutputBytes
	if info.Size() > limit {
		return fail("OUTPUT_FILE %s is %d bytes, over MAX_OUTPUT_BYTES=%d", f.cfg.OutputFile, info.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return fail("cannot read OUTPUT_FILE %s: %v", f.cfg.OutputFile, err)
	}
	if int64(len(data)) > limit {
		return fail("OUTPUT_FILE %s is over MAX_OUTPUT_BYTES=%d", f.cfg.OutputFile, limit)
	}
	return data, nil
}
