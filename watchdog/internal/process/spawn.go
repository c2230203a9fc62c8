package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"nanofaas.dev/watchdog/proctree"
)

// Process is a started process, leader of its own process group.
type Process struct {
	Pid     int
	Started time.Time
	done    chan struct{}
	exit    Exit
}

// Done is closed when the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exit returns how the process ended; valid after Done is closed.
func (p *Process) Exit() Exit {
	<-p.done
	return p.exit
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// SignalGroup sends sig to the process's whole group.
func (p *Process) SignalGroup(sig syscall.Signal) error {
	return syscall.Kill(-p.Pid, sig)
}

// Stop ends the process and everything in its group: SIGTERM to the group,
// up to grace for all of it to exit, then SIGKILL to the group. It returns
// once the leader has been reaped (or, in the impossible case that SIGKILL
// does not end it, after a bound).
func (p *Process) Stop(grace time.Duration) {
	proctree.StopGroup(proctree.Group{Leader: p.Pid, Exited: p.done}, grace)
}

// Kill sends SIGKILL to the group at once and waits for the leader.
func (p *Process) Kill() {
	_ = p.SignalGroup(syscall.SIGKILL)
	p.waitLeader(5 * time.Second)
}

func (p *Process) waitLeader(bound time.Duration) {
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	}
}

// Spec says what to start.
type Spec struct {
	Argv []string
	Env  []string
	Dir  string
	// Files become the child's fds 0, 1 and 2; nil entries are /dev/null.
	Stdin, Stdout, Stderr *os.File
	// Extra become the child's fds 3, 4, ... in order.
	Extra []*os.File
}

// SpawnError is returned when a process cannot be started.
type SpawnError struct {
	Command string
	Err     error
	Hint    string
}

// Error names the command, the cause and, when known, a hint.
func (e *SpawnError) Error() string {
	msg := fmt.Sprintf("cannot start %q: %v", e.Command, e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap returns the error from exec.
func (e *SpawnError) Unwrap() error { return e.Err }

// Start starts a process in a new process group. The process receives
// SIGKILL if the watchdog dies, so it cannot outlive a crashed supervisor.
func (m *Manager) Start(spec Spec) (*Process, error) {
	if len(spec.Argv) == 0 {
		return nil, &SpawnError{Command: "", Err: errors.New("empty command")}
	}
	path, err := lookPath(spec.Argv[0], spec.Env)
	if err != nil {
		return nil, err
	}
	fds := make([]uintptr, 3)
	var devnull *os.File
	for i, f := range []*os.File{spec.Stdin, spec.Stdout, spec.Stderr} {
		if f == nil {
			// Opened only when a stream is not given: a STDIO function
			// has all three, and its spawn saves the open and close.
			if devnull == nil {
				devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0)
				if err != nil {
					return nil, &SpawnError{Command: spec.Argv[0], Err: err}
				}
				defer devnull.Close()
			}
			f = devnull
		}
		fds[i] = f.Fd()
	}
	for _, f := range spec.Extra {
		fds = append(fds, f.Fd())
	}
	attr := &syscall.ProcAttr{
		Dir:   spec.Dir,
		Env:   spec.Env,
		Files: fds,
		Sys:   &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	m.mu.Lock()
	pid, err := syscall.ForkExec(path, spec.Argv, attr)
	if err != nil {
		m.mu.Unlock()
		return nil, spawnError(spec.Argv[0], err)
	}
	p := &Process{Pid: pid, Started: time.Now(), done: make(chan struct{})}
	m.procs[pid] = p
	m.mu.Unlock()
	if !m.reapAll {
		go m.waitOne(p)
	}
	return p, nil
}

func spawnError(command string, err error) error {
	se := &SpawnError{Command: command, Err: err}
	switch {
	case errors.Is(err, syscall.ENOENT):
		se.Hint = "the file or its interpreter (#! line) does not exist"
	case errors.Is(err, syscall.EACCES):
		se.Hint = "check that it is executable (chmod +x) and its directory is readable"
	case errors.Is(err, syscall.ENOEXEC):
		se.Hint = "it is not a binary for this machine; a script needs a #! line"
	}
	return se
}

// lookPath resolves a command name through the PATH of the child's environment.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathVar := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" {
			dir = "."
		}
		candidate := filepath.Join(dir, name)
		info, err := os.Stat(candidate)
		if err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
			return candidate, nil
		}
	}
	return "", &SpawnError{Command: name, Err: errors.New("executable file not found in PATH"),
		Hint: "PATH=" + pathVar + "; use an absolute path or install it in the image"}
}
