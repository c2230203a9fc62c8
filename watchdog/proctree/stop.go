package proctree

import (
	"errors"
	"syscall"
	"time"
)

// Group is a process group to stop.
type Group struct {
	// Leader is the group's leader; its pid is the group's id.
	Leader int
	// Exited is closed once the leader has exited and been reaped by
	// whoever waits for it (a reaper goroutine, exec.Cmd.Wait): StopGroup
	// never waits for the process itself.
	Exited <-chan struct{}
	// Escaped, when true, also stops what left the group: once the leader
	// is gone, the groups (and the processes) of the leader's descendants
	// that moved to groups of their own (setsid, setpgid), as seen before
	// the SIGTERM and again before the SIGKILL, get SIGKILL.
	Escaped bool
}

// Bounds of the waits that follow a signal.
const (
	// goneWait bounds the wait for a leader that had already left when
	// StopGroup began (its reaper has yet to close Exited).
	goneWait = time.Second
	// killWait bounds the wait for the leader after SIGKILL, which cannot
	// be ignored: only a process stuck in the kernel outlasts it.
	killWait = 5 * time.Second
	// pollEvery is how often the group is checked during the grace period.
	pollEvery = 5 * time.Millisecond
)

// StopGroup ends a process group: SIGTERM to the group, up to grace for the
// leader to exit and the group to empty, then SIGKILL to the group. It
// returns once the leader has been reaped (Exited is closed), or after a
// bound when even SIGKILL did not end it.
func StopGroup(g Group, grace time.Duration) {
	var tree []member
	if g.Escaped {
		tree = members(g.Leader)
	}
	if err := syscall.Kill(-g.Leader, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		waitClosed(g.Exited, goneWait)
		killEscaped(g.Leader, tree)
		return
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			if g.Escaped {
				tree = append(tree, members(g.Leader)...)
			}
			_ = syscall.Kill(-g.Leader, syscall.SIGKILL)
			waitClosed(g.Exited, killWait)
			killEscaped(g.Leader, tree)
			return
		case <-tick.C:
			if isClosed(g.Exited) && !GroupAlive(g.Leader) {
				killEscaped(g.Leader, tree)
				return
			}
		}
	}
}

// member is a descendant and the group it was in when it was seen.
type member struct{ pid, pgid int }

// members lists the descendants of pid with their process groups.
func members(pid int) []member {
	var out []member
	for _, p := range Descendants(pid) {
		if st, err := ReadStat(p); err == nil {
			out = append(out, member{pid: p, pgid: st.PGID})
		}
	}
	return out
}

// killEscaped SIGKILLs the members of tree that are still in the group they
// were seen in, and that group when it is neither the leader's (already
// signalled) nor the caller's own.
func killEscaped(leader int, tree []member) {
	own := syscall.Getpgrp()
	seen := map[int]bool{leader: true, own: true}
	for _, m := range tree {
		st, err := ReadStat(m.pid)
		if err != nil || st.PGID != m.pgid {
			// Gone, or its pid now names another process.
			continue
		}
		if m.pgid > 1 && !seen[m.pgid] {
			seen[m.pgid] = true
			_ = syscall.Kill(-m.pgid, syscall.SIGKILL)
		}
		_ = syscall.Kill(m.pid, syscall.SIGKILL)
	}
}

func waitClosed(ch <-chan struct{}, bound time.Duration) {
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
