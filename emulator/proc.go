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
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"nanofaas.dev/devkit/freeport"
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

// MaxRSSKB is the peak resident set size, in KiB, of the largest process in
// the child's tree: wait4's rusage of the child covers the child and every
// descendant it waited for.
func (c *child) MaxRSSKB() int64 {
	if ru, ok := c.state().SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return -1
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
	tree := descendants(c.Pid())
	_ = syscall.Kill(-c.Pid(), syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		tree = append(tree, descendants(c.Pid())...)
		_ = syscall.Kill(-c.Pid(), syscall.SIGKILL)
		<-c.done
	}
	killGroups(tree)
}

// Stopping reports whether Stop was called.
func (c *child) Stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

// procInfo is one process of a tree.
type procInfo struct{ pid, pgid int }

// descendants lists every process below pid, read from /proc.
func descendants(root int) []procInfo {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	kids := map[int][]procInfo{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, pgid, ok := readStat(pid)
		if ok {
			kids[ppid] = append(kids[ppid], procInfo{pid, pgid})
		}
	}
	var out []procInfo
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range kids[p] {
			out = append(out, k)
			queue = append(queue, k.pid)
		}
	}
	return out
}

// readStat returns a process's parent and process group.
func readStat(pid int) (ppid, pgid int, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, false
	}
	// After "pid (comm) ": state ppid pgrp ...
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	return ppid, pgid, err1 == nil && err2 == nil
}

// killGroups SIGKILLs the groups (and the processes) of a tree that is left
// over; processes already gone are ignored.
func killGroups(tree []procInfo) {
	seen := map[int]bool{}
	for _, p := range tree {
		if p.pgid > 1 && !seen[p.pgid] && p.pgid != syscall.Getpgrp() {
			seen[p.pgid] = true
			_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		}
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// treePeakRSSKB is the largest peak resident set size (VmHWM), in KiB, among
// root and its descendants: the measure wait4 gives for a finished tree,
// taken from a live one.
func treePeakRSSKB(root int) int64 {
	best := int64(-1)
	for _, pid := range append([]int{root}, pids(descendants(root))...) {
		if kb := vmHWM(pid); kb > best {
			best = kb
		}
	}
	return best
}

func pids(ps []procInfo) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.pid
	}
	return out
}

func vmHWM(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
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

// syncWriter serialises whole writes, so lines never interleave.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewSyncWriter wraps w so that concurrent writers never interleave mid-line.
func NewSyncWriter(w io.Writer) io.Writer {
	if s, ok := w.(*syncWriter); ok {
		return s
	}
	return &syncWriter{w: w}
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
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
