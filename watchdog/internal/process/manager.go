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
