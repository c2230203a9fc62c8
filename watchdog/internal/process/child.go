package process

import (
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"nanofaas.dev/watchdog/procio"
)

// drainTimeout bounds how long the watchdog waits for a process's pipes to
// reach end-of-file after its group is gone: a daemon that escaped the group
// and kept stdout open cannot stall the result.
const drainTimeout = 500 * time.Millisecond

// Options describe a function process and its standard streams.
type Options struct {
	Argv []string
	Env  []string
	Dir  string
	// Stdin, when not nil, is written to the process's stdin, which is then
	// closed. When nil, stdin is /dev/null (unless KeepStdin).
	Stdin []byte
	// KeepStdin makes stdin a pipe that stays open: the caller writes to
	// it through Child.StdinPipe. Stdin must be nil.
	KeepStdin bool
	// ExtraFiles become the process's fds 3, 4, ...; the caller keeps its
	// own copies and closes them when it wants.
	ExtraFiles []*os.File
	// CaptureStdout > 0 captures stdout up to that many bytes; beyond it the
	// group is killed and Overflowed reports true. When 0, stdout lines pass
	// through to StdoutSink.
	CaptureStdout int64
	// StdoutSink receives stdout lines when not captured (nil: discarded).
	StdoutSink io.Writer
	// StderrSink receives stderr lines (nil: discarded; the tail is kept anyway).
	StderrSink io.Writer
}

// Child is a running function process with its streams.
type Child struct {
	*Process
	manager *Manager
	stdin   *os.File
	readers []*os.File
	pumps   sync.WaitGroup
	capture *Capture
	tail    procio.Tail
	// stderrDone is closed when stderr has reached end-of-file.
	stderrDone chan struct{}
	finish     sync.Once
	// stdinWritten: stdin is written by StartChild (Options.Stdin), not
	// by the caller.
	stdinWritten bool
}

// StartChild starts a process described by o.
func (m *Manager) StartChild(o Options) (*Child, error) {
	c := &Child{manager: m, stderrDone: make(chan struct{})}
	var closeAfterStart []*os.File
	cleanup := func() {
		for _, f := range closeAfterStart {
			f.Close()
		}
	}
	stdinR, stdinW, err := pipe(o.Stdin != nil || o.KeepStdin)
	if err != nil {
		return nil, &SpawnError{Command: o.Argv[0], Err: err}
	}
	closeAfterStart = append(closeAfterStart, stdinR)
	stdoutR, stdoutW, err := pipe(true)
	if err != nil {
		cleanup()
		return nil, &SpawnError{Command: o.Argv[0], Err: err}
	}
	closeAfterStart = append(closeAfterStart, stdoutW)
	stderrR, stderrW, err := pipe(true)
	if err != nil {
		cleanup()
		stdoutR.Close()
		return nil, &SpawnError{Command: o.Argv[0], Err: err}
	}
	closeAfterStart = append(closeAfterStart, stderrW)

	p, err := m.Start(Spec{Argv: o.Argv, Env: o.Env, Dir: o.Dir, Stdin: stdinR, Stdout: stdoutW, Stderr: stderrW, Extra: o.ExtraFiles})
	cleanup()
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		if stdinW != nil {
			stdinW.Close()
		}
		return nil, err
	}
	c.Process = p
	c.readers = []*os.File{stdoutR, stderrR}

	if stdinW != nil && o.KeepStdin {
		c.stdin = stdinW
	} else if stdinW != nil {
		c.stdin = stdinW
		c.stdinWritten = true
		go func() {
			// EPIPE when the function does not read its input is not our error.
			_, _ = stdinW.Write(o.Stdin)
			stdinW.Close()
		}()
	}
	c.pumps.Add(2)
	go func() {
		defer c.pumps.Done()
		defer close(c.stderrDone)
		pumpLines(stderrR, sinkOrDiscard(o.StderrSink), &c.tail)
	}()
	go func() {
		defer c.pumps.Done()
		if o.CaptureStdout > 0 {
			c.capture = &Capture{limit: o.CaptureStdout}
			c.capture.pump(stdoutR, func() { _ = p.SignalGroup(syscall.SIGKILL) })
			return
		}
		pumpLines(stdoutR, sinkOrDiscard(o.StdoutSink), nil)
	}()
	return c, nil
}

func sinkOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Finish ends the invocation's processes and streams: it stops what is left
// of the group (SIGTERM, grace, SIGKILL), waits a bounded time for the pipes
// to reach end-of-file, then closes them. Safe to call more than once.
func (c *Child) Finish(grace time.Duration) {
	c.finish.Do(func() {
		c.Stop(grace)
		c.manager.StopStrays(grace)
		done := make(chan struct{})
		go func() { c.pumps.Wait(); close(done) }()
		t := time.NewTimer(drainTimeout)
		select {
		case <-done:
			t.Stop()
		case <-t.C:
			for _, r := range c.readers {
				_ = r.SetReadDeadline(time.Now())
			}
			<-done
		}
		for _, r := range c.readers {
			r.Close()
		}
		if c.stdin != nil {
			c.stdin.Close()
		}
	})
}

// StdinPipe returns the write end of the process's stdin when it was
// started with KeepStdin (nil otherwise). Finish closes it.
func (c *Child) StdinPipe() *os.File {
	if c.stdin == nil || c.stdinWritten {
		return nil
	}
	return c.stdin
}

// Stdout returns the captured stdout and whether it passed the limit. Call
// after Finish.
func (c *Child) Stdout() (data []byte, overflowed bool) {
	if c.capture == nil {
		return nil, false
	}
	return c.capture.buf, c.capture.overflow
}

// StderrTail returns the last few KiB the process wrote to stderr.
func (c *Child) StderrTail() string { return c.tail.String() }

// StderrTailWithin waits up to d for stderr to reach end-of-file (the
// process, and whatever inherited its stderr, has exited), then returns the
// last few KiB written to it. Right after the process has exited, what it
// wrote last may still be in the pipe: the exit and the pipe are noticed
// independently.
func (c *Child) StderrTailWithin(d time.Duration) string {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.stderrDone:
	case <-t.C:
	}
	return c.tail.String()
}
