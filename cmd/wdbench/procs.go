package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"nanofaas.dev/devkit/freeport"
	"nanofaas.dev/watchdog/procio"
	"nanofaas.dev/watchdog/proctree"
)

// procs tracks every process the benchmark started, so that each is
// stopped (by its pid) however the benchmark ends.
var procs = struct {
	mu   sync.Mutex
	live map[int]*proc
}{live: map[int]*proc{}}

// proc is a started process, leader of its own process group.
type proc struct {
	name   string
	cmd    *exec.Cmd
	pid    int
	tail   *procio.Tail
	done   chan struct{}
	exit   error
	closed sync.Once
}

// startProc starts path with env (added to the benchmark's own) in a new
// process group; its stdout and stderr are drained into a small tail for
// error messages (a pipe, as a container log would be). The process gets
// SIGKILL if the benchmark dies.
func startProc(name, path string, env []string, args ...string) (*proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	tail := &procio.Tail{Max: 8 << 10}
	cmd.Stdout = tail
	cmd.Stderr = tail
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A descendant that keeps the output pipe open cannot stall Wait.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, pid: cmd.Process.Pid, tail: tail, done: make(chan struct{})}
	procs.mu.Lock()
	procs.live[p.pid] = p
	procs.mu.Unlock()
	go func() {
		p.exit = cmd.Wait()
		procs.mu.Lock()
		delete(procs.live, p.pid)
		procs.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process's group, waits up to grace, then
// SIGKILLs the group, and waits for the process to be reaped.
func (p *proc) stop(grace time.Duration) {
	p.closed.Do(func() {
		proctree.StopGroup(proctree.Group{Leader: p.pid, Exited: p.done}, grace)
	})
}

// describe names the process and quotes the end of its output.
func (p *proc) describe() string {
	s := p.name + " (pid " + strconv.Itoa(p.pid) + ")"
	if p.exited() {
		s += " exited: " + fmt.Sprint(p.exit)
	}
	if t := strings.TrimSpace(p.tail.String()); t != "" {
		s += "; its output ends with:\n" + t
	}
	return s
}

// stopAll stops every process still running.
func stopAll() {
	procs.mu.Lock()
	live := make([]*proc, 0, len(procs.live))
	for _, p := range procs.live {
		live = append(live, p)
	}
	procs.mu.Unlock()
	for _, p := range live {
		p.stop(2 * time.Second)
	}
}

// freePorts returns n distinct ports for the watchdog and the runtime to
// bind (see package freeport).
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		port, err := freeport.Pick()
		if err != nil {
			return nil, err
		}
		ports = append(ports, port)
	}
	return ports, nil
}

// newClient returns a keep-alive HTTP client for loopback targets.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 4,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}}
}

// errNotReady is returned by waitReady when the deadline passes.
var errNotReady = errors.New("not ready")

// waitReady polls url every interval until it answers 200, and returns
// when it did. It fails when p exits first or the deadline passes.
func waitReady(ctx context.Context, c *http.Client, url string, p *proc, interval, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return time.Time{}, err
		}
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		if p != nil && p.exited() {
			return time.Time{}, fmt.Errorf("%s before %s answered 200", p.describe(), url)
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%w: %s did not answer 200 within %v", errNotReady, url, within)
		}
		time.Sleep(interval)
	}
}
