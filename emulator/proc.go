package emulator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"nanofaas.dev/devkit/freeport"
	"nanofaas.dev/watchdog/proctree"
)

// Watchdog says how to start a watchdog process.
type Watchdog struct {
	// Path is the executable; Args its argv (Args[0] included).
	Path string
	Args []string
}

// SelfWatchdog re-executes this binary with the hidden watchdog subcommand,
// so the real watchdog code runs in its own process without a separate build.
func SelfWatchdog() (Watchdog, error) {
	exe, err := SelfPath()
	if err != nil {
		return Watchdog{}, err
	}
	return Watchdog{Path: exe, Args: []string{exe, WatchdogCommand}}, nil
}

// ExternalWatchdog uses a watchdog binary built separately (--watchdog).
func ExternalWatchdog(path string) (Watchdog, error) {
	resolved, err := exec.LookPath(path)
	if err != nil {
		return Watchdog{}, fmt.Errorf("cannot use watchdog %q: %w", path, err)
	}
	abs, err := filepath.Abs(resolved)
	if err != nil {
		return Watchdog{}, fmt.Errorf("cannot use watchdog %q: %w", path, err)
	}
	return Watchdog{Path: abs, Args: []string{abs}}, nil
}

// String describes the watchdog for logs.
func (w Watchdog) String() string { return strings.Join(w.Args, " ") }

// SelfPath is the absolute path of the running binary.
func SelfPath() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the emulator's own binary: %w", err)
	}
	return exe, nil
}

// child is a process the emulator started (a watchdog, or the docker client
// running one), leader of its own process group.
type child struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}
	out     *prefixWriter

	mu       sync.Mutex
	stopping bool
}

// startChild starts argv in dir with env, its stdout and stderr going line by
// line to out. If the emulator dies, the child gets SIGTERM (and stops its
// function in turn).
func startChild(path string, argv []string, dir string, env []string, out *prefixWriter) (*child, error) {
	cmd := &exec.Cmd{Path: path, Args: argv, Dir: dir, Env: env, Stdout: out, Stderr: out}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// A descendant that keeps the pipes open must not hang the emulator.
	cmd.WaitDelay = 2 * time.Second
	c := &child{cmd: cmd, done: make(chan struct{}), out: out}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c.started = time.Now()
	go func() {
		_ = cmd.Wait()
		out.Flush()
		close(c.done)
	}()
	return c, nil
}

func (c *child) Pid() int                { return c.cmd.Process.Pid }
func (c *child) Done() <-chan struct{}   { return c.done }
func (c *child) state() *os.ProcessState { <-c.done; return c.cmd.ProcessState }

// Exited reports whether the child has exited.
func (c *child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// ExitCode is the child's exit status (-1 when killed by a signal).
func (c *child) ExitCode() int { return c.state().ExitCode() }

// ExitString describes how the child ended.
func (c *child) ExitString() string {
	st := c.state()
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by " + unix.SignalName(ws.Signal())
	}
	return "exit status " + strconv.Itoa(st.ExitCode())
}

// Stop ends the child: SIGTERM to its group, up to grace for it to exit (it
// stops its own function meanwhile), then SIGKILL to its group and to the
// groups of every descendant it left, so that nothing outlives it.
func (c *child) Stop(grace time.Duration) {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	if c.Exited() {
		return
	}
	proctree.StopGroup(proctree.Group{Leader: c.Pid(), Exited: c.done, Escaped: true}, grace)
}

// Stopping reports whether Stop was called.
func (c *child) Stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

// peakEvery is how often a peakSampler reads the memory figures.
const peakEvery = 5 * time.Millisecond

// peakSampler follows the memory high-water marks of the processes below a
// watchdog (its function and what that started; not the watchdog itself)
// while they run. VmHWM is reset by exec, so it is each program's own peak,
// unlike wait4's ru_maxrss, which a process started by a Go program inherits
// from its parent (golang/go#32054). A process's figures go when it exits,
// so they are read every peakEvery: a peak reached less than peakEvery
// before the exit, or a process that lived less than that, can be missed.
type peakSampler struct {
	root int
	stop chan struct{}
	done chan struct{}
	best atomic.Int64
}

// MethodSampled names the figure of a peakSampler (Report.MaxRSSMethod).
const MethodSampled = "vmhwm-sampled"

// samplePeaks starts sampling the processes below root.
func samplePeaks(root int) *peakSampler {
	s := &peakSampler{root: root, stop: make(chan struct{}), done: make(chan struct{})}
	s.best.Store(-1)
	go func() {
		defer close(s.done)
		t := time.NewTicker(peakEvery)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// sample reads the VmHWM of every process below root now. A child of root
// that still has root's command name is between fork and exec: a copy of
// root, with root's memory, not yet the function; it is passed over.
func (s *peakSampler) sample() {
	rootStat, rootErr := proctree.ReadStat(s.root)
	for _, pid := range proctree.Descendants(s.root) {
		if st, err := proctree.ReadStat(pid); err != nil ||
			rootErr == nil && st.PPID == s.root && st.Comm == rootStat.Comm {
			continue
		}
		if m, err := proctree.ReadMemory(pid); err == nil && m.Peak > s.best.Load() {
			s.best.Store(m.Peak)
		}
	}
}

// Stop takes a last sample and stops. It returns the largest peak resident
// set size, in KiB, of a single process seen, or -1 when none was seen.
func (s *peakSampler) Stop() int64 {
	if s == nil {
		return -1
	}
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.sample()
	return s.best.Load()
}

// freePort returns a TCP port for a runtime or a watchdog to bind: free a
// moment ago, and below the kernel's ephemeral range, so that no outgoing
// connection takes it before the process binds it (see package freeport).
func freePort() (int, error) {
	port, err := freeport.Pick()
	if err != nil {
		return 0, fmt.Errorf("cannot find a port for the function: %w", err)
	}
	return port, nil
}

// prefixWriter writes each line it is given to out, prefixed.
type prefixWriter struct {
	mu     sync.Mutex
	out    io.Writer
	prefix string
	buf    []byte
}

// maxLogLine is the longest line written in one piece; longer ones are split.
const maxLogLine = 64 * 1024

func newPrefixWriter(out io.Writer, prefix string) *prefixWriter {
	return &prefixWriter{out: out, prefix: prefix}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 && len(p.buf) < maxLogLine {
			break
		}
		n := i
		if i < 0 || i > maxLogLine {
			n = maxLogLine
		}
		p.line(p.buf[:n])
		if i == n {
			n++
		}
		p.buf = p.buf[n:]
	}
	if len(p.buf) == 0 {
		p.buf = nil
	}
	return len(b), nil
}

func (p *prefixWriter) line(l []byte) {
	l = bytes.TrimSuffix(l, []byte("\r"))
	msg := make([]byte, 0, len(p.prefix)+len(l)+1)
	msg = append(append(append(msg, p.prefix...), l...), '\n')
	_, _ = p.out.Write(msg)
}

// Printf writes one message line (or several) with the prefix.
func (p *prefixWriter) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n") {
		p.line([]byte(l))
	}
}

// Flush writes a last line that has no newline.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		p.line(p.buf)
		p.buf = nil
	}
}

var errStopped = errors.New("the emulator is stopping")
