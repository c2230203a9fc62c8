package process

import (
	"os"
	"syscall"
	"time"

	"nanofaas.dev/watchdog/proctree"
)

// StopStrays stops the processes that were re-parented to the watchdog (a
// subreaper adopts orphans) and that it did not start: descendants that
// escaped their process group (setsid, double fork) and outlived the process
// that started them. Each gets SIGTERM (with its group), up to grace to exit,
// then SIGKILL. Their own children are adopted in turn and stopped in the
// next round. Processes in the group of a live process the manager started
// are left alone. Without reapAll the watchdog adopts nothing, so there is
// nothing to do.
func (m *Manager) StopStrays(grace time.Duration) int {
	if !m.reapAll {
		return 0
	}
	stopped := 0
	for round := 0; round < 8; round++ {
		strays := m.strays()
		if len(strays) == 0 {
			return stopped
		}
		stopped += len(strays)
		for _, pid := range strays {
			signalStray(pid, syscall.SIGTERM)
		}
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) && anyAlive(strays) {
			time.Sleep(5 * time.Millisecond)
		}
		for _, pid := range strays {
			signalStray(pid, syscall.SIGKILL)
		}
		m.log.Warn("stopped processes that outlived their invocation", "pids", strays)
		// Let the reaper collect them before looking again.
		for i := 0; i < 40 && anyAlive(strays); i++ {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return stopped
}

// strays lists the watchdog's children that the manager did not start and
// that are not in the group of a process it did start.
func (m *Manager) strays() []int {
	children := proctree.Children(os.Getpid())
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int
	for _, pid := range children {
		if _, ours := m.procs[pid]; ours {
			continue
		}
		pgid, err := syscall.Getpgid(pid)
		if err != nil {
			continue
		}
		if _, live := m.procs[pgid]; live {
			continue
		}
		if proctree.Zombie(pid) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// signalStray signals pid, and its whole group when it leads one that is not the watchdog's.
func signalStray(pid int, sig syscall.Signal) {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid && pgid != syscall.Getpgrp() {
		_ = syscall.Kill(-pgid, sig)
	}
	_ = syscall.Kill(pid, sig)
}

func anyAlive(pids []int) bool {
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil && !proctree.Zombie(pid) {
			return true
		}
	}
	return false
}
