// Package process starts function processes in their own process group,
// waits for them, stops their whole group, and, as PID 1 or a subreaper,
// reaps every orphan that is handed to the watchdog.
package process

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Manager starts processes and collects their exit status. With reapAll set
// (PID 1 or a subreaper) it waits for any child, so orphans re-parented to the
// watchdog are reaped too; otherwise it waits only for the processes it started.
type Manager struct {
	log     *slog.Logger
	reapAll bool

	mu    sync.Mutex
	procs map[int]*Process
	// orphans counts reaped processes the manager did not start.
	orphans uint64

	stop chan struct{}
	wg   sync.WaitGroup
}

// NewManager returns a manager. With reapAll, it starts reaping on SIGCHLD;
// call Close to stop.
func NewManager(log *slog.Logger, reapAll bool) *Manager {
	m := &Manager{log: log, reapAll: reapAll, procs: map[int]*Process{}, stop: make(chan struct{})}
	if reapAll {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGCHLD)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer signal.Stop(sigs)
			// A periodic sweep catches anything a coalesced SIGCHLD hid.
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				m.reapAvailable()
				select {
				case <-m.stop:
					return
				case <-sigs:
				case <-tick.C:
				}
			}
		}()
	}
	return m
}

// BecomeSubreaper makes the calling process a child subreaper, so orphaned
// descendants are re-parented to it instead of to init.
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// Close stops the reaper goroutine.
func (m *Manager) Close() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.wg.Wait()
}

// OrphansReaped returns how many processes the manager reaped that it did not start.
func (m *Manager) OrphansReaped() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.orphans
}

// Signal sends sig to the process group of every live process.
func (m *Manager) Signal(sig syscall.Signal) {
	m.mu.Lock()
	procs := make([]*Process, 0, len(m.procs))
	for _, p := range m.procs {
		procs = append(procs, p)
	}
	m.mu.Unlock()
	for _, p := range procs {
		_ = p.SignalGroup(sig)
	}
}

// reapAvailable collects every child that has exited.
func (m *Manager) reapAvailable() {
	for {
		var ws syscall.WaitStatus
		var ru syscall.Rusage
		m.mu.Lock()
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, &ru)
		if err == nil && pid > 0 {
			m.deliverLocked(pid, ws, &ru)
		}
		m.mu.Unlock()
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}

func (m *Manager) deliverLocked(pid int, ws syscall.WaitStatus, ru *syscall.Rusage) {
	p, ok := m.procs[pid]
	if !ok {
		m.orphans++
		m.log.Debug("reaped orphan", "pid", pid, "status", exitFromStatus(ws, ru).String())
		return
	}
	delete(m.procs, pid)
	p.exit = exitFromStatus(ws, ru)
	close(p.done)
}

// waitOne waits for one process the manager started, when not reaping all.
func (m *Manager) waitOne(p *Process) {
	if usePidfd && m.waitPidfd(p) {
		return
	}
	for {
		var ws syscall.WaitStatus
		var ru syscall.Rusage
		_, err := syscall.Wait4(p.Pid, &ws, 0, &ru)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		m.mu.Lock()
		if err != nil {
			// Somebody else reaped it; report it as gone.
			delete(m.procs, p.Pid)
			p.exit = Exit{Code: -1}
			close(p.done)
		} else {
			m.deliverLocked(p.Pid, ws, &ru)
		}
		m.mu.Unlock()
		return
	}
}

// usePidfd is false only in tests that compare with waiting in wait4.
var usePidfd = true

// waitPidfd waits for p through a pidfd, which becomes readable when p
// exits, in the runtime's poller, then reaps it with a wait4 that does not
// block. It reports false, having done nothing, when a pidfd cannot be had
// (Linux before 5.3, a seccomp profile that refuses pidfd_open); waitOne
// then blocks in wait4 instead.
//
// A goroutine blocked in wait4 holds its P for the whole life of the
// process, until sysmon notices, which takes from 20 us to 10 ms: with
// GOMAXPROCS=1 (see the watchdog's tuneRuntime) nothing else would run
// meanwhile, neither the pumps of the process's pipes nor the HTTP server.
func (m *Manager) waitPidfd(p *Process) bool {
	fd, err := unix.PidfdOpen(p.Pid, 0)
	if err != nil {
		return false
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return false
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	reaped := false
	_ = rc.Read(func(uintptr) bool {
		var ws syscall.WaitStatus
		var ru syscall.Rusage
		pid, err := syscall.Wait4(p.Pid, &ws, syscall.WNOHANG, &ru)
		for errors.Is(err, syscall.EINTR) {
			pid, err = syscall.Wait4(p.Pid, &ws, syscall.WNOHANG, &ru)
		}
		if err == nil && pid == 0 {
			return false // still running: wait until the pidfd is readable
		}
		m.mu.Lock()
		if err != nil {
			// Somebody else reaped it; report it as gone.
			delete(m.procs, p.Pid)
			p.exit = Exit{Code: -1}
			close(p.done)
		} else {
			m.deliverLocked(p.Pid, ws, &ru)
		}
		m.mu.Unlock()
		reaped = true
		return true
	})
	// rc.Read fails, before p is reaped, when the poller cannot wait on
	// the pidfd: waitOne then waits in wait4.
	return reaped
}
