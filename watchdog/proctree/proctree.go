// Package proctree reads and stops process trees on Linux: the children and
// descendants of a process from /proc, a process's state and memory figures,
// whether a process group has members left, and stopping a whole group
// (SIGTERM, a grace period, SIGKILL).
//
// It is the one implementation of these for the watchdog, the emulator and
// the tools (benchmark, soak), so that they agree on what "alive" and
// "stopped" mean.
package proctree

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Children lists the children of every thread of pid, read from
// /proc/PID/task/*/children. A process that is gone has none.
func Children(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []int
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// Descendants lists every process below pid (children, their children, ...),
// parents before their children. pid itself is not included.
func Descendants(pid int) []int {
	var out []int
	queue := Children(pid)
	seen := map[int]bool{pid: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		queue = append(queue, Children(p)...)
	}
	return out
}

// Stat is what /proc/PID/stat says about a process.
type Stat struct {
	// Comm is the command name (at most 15 bytes of the executable's
	// name; a child keeps its parent's until it execs).
	Comm string
	// State is the one-letter state (R, S, D, Z, T...).
	State byte
	// PPID is the parent's pid, PGID the process group.
	PPID, PGID int
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, fmt.Errorf("cannot read the state of process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces or
	// parentheses itself: the fields that follow start after the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("cannot parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("cannot parse /proc/%d/stat: too few fields", pid)
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	if err := errors.Join(err1, err2); err != nil {
		return Stat{}, fmt.Errorf("cannot parse /proc/%d/stat: %w", pid, err)
	}
	comm := ""
	if j := strings.IndexByte(s, '('); j >= 0 && j < i {
		comm = s[j+1 : i]
	}
	return Stat{Comm: comm, State: f[0][0], PPID: ppid, PGID: pgid}, nil
}

// Zombie reports whether pid has exited and waits to be reaped (or is gone).
func Zombie(pid int) bool {
	st, err := ReadStat(pid)
	return err != nil || st.State == 'Z'
}

// Memory is a process's memory figures from /proc/PID/status, in kB.
type Memory struct {
	// RSS is the resident set now (VmRSS); Peak its high-water mark
	// (VmHWM), which exec resets, so it is the program's own.
	RSS, Peak int64
	// Anon and File are the anonymous and file-backed parts of RSS
	// (RssAnon, RssFile).
	Anon, File int64
}

// ReadMemory reads a process's memory figures from /proc/PID/status.
func ReadMemory(pid int) (Memory, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, fmt.Errorf("cannot read the memory figures of process %d: %w", pid, err)
	}
	var m Memory
	found := false
	for _, line := range strings.Split(string(data), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &m.RSS
			found = true
		case "VmHWM":
			dst = &m.Peak
		case "RssAnon":
			dst = &m.Anon
		case "RssFile":
			dst = &m.File
		default:
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err == nil {
			*dst = n
		}
	}
	if !found {
		// Kernel threads and zombies have no memory lines.
		return m, fmt.Errorf("process %d has no memory figures (a zombie or a kernel thread)", pid)
	}
	return m, nil
}

// GroupAlive reports whether any process (zombies included) is left in the
// process group pgid. A group whose members this process may not signal
// (EPERM) still exists, so it is alive.
func GroupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// Usage is what a process holds besides memory.
type Usage struct {
	// Threads counts its threads, FDs its open file descriptors.
	Threads, FDs int
}

// ReadUsage counts a process's threads (/proc/PID/task) and open file
// descriptors (/proc/PID/fd).
func ReadUsage(pid int) (Usage, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	tasks, err := os.ReadDir(dir + "/task")
	if err != nil {
		return Usage{}, fmt.Errorf("cannot count the threads of process %d: %w", pid, err)
	}
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return Usage{}, fmt.Errorf("cannot count the open files of process %d: %w", pid, err)
	}
	return Usage{Threads: len(tasks), FDs: len(fds)}, nil
}
