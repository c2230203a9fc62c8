package proctree

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// group is a started sh script, leader of its own process group, reaped by
// a goroutine that closes exited.
type group struct {
	cmd    *exec.Cmd
	pid    int
	exited chan struct{}
}

// startGroup runs script with sh in a new process group; the test's
// cleanup kills whatever is left of the group and reaps the leader.
func startGroup(t *testing.T, script string) *group {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start sh: %v", err)
	}
	g := &group{cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-g.pid, syscall.SIGKILL)
		<-g.exited
	})
	return g
}

// waitFor polls cond until it holds, failing the test after a generous
// bound: the condition is an event the test waits for, not a timing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestChildrenDescendantsAndStat(t *testing.T) {
	// sh forks a subshell, which forks a sleep: a child and a grandchild.
	g := startGroup(t, "(sleep 30; :) & wait")
	var kids, all []int
	waitFor(t, "a child and a grandchild", func() bool {
		kids, all = Children(g.pid), Descendants(g.pid)
		return len(kids) == 1 && len(all) == 2
	})
	if all[0] != kids[0] {
		t.Errorf("Descendants = %v, want the child %d first", all, kids[0])
	}
	st, err := ReadStat(all[1])
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != kids[0] || st.PGID != g.pid || st.State == 'Z' {
		t.Errorf("ReadStat(grandchild) = %+v, want parent %d, group %d, not a zombie", st, kids[0], g.pid)
	}
	if st, err := ReadStat(g.pid); err != nil || st.PPID != os.Getpid() || st.PGID != g.pid || st.Comm != "sh" {
		t.Errorf("ReadStat(leader) = %+v, %v; want sh, parent %d (this test), group %d", st, err, os.Getpid(), g.pid)
	}
	if !GroupAlive(g.pid) {
		t.Error("GroupAlive = false for a running group")
	}
	if got := Children(os.Getpid()); !slices.Contains(got, g.pid) {
		t.Errorf("Children(self) = %v, want it to hold %d", got, g.pid)
	}
}

func TestZombieAndGone(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Not reaped yet: it stays a zombie until Wait.
	waitFor(t, "true to exit", func() bool {
		st, err := ReadStat(pid)
		return err == nil && st.State == 'Z'
	})
	if !Zombie(pid) {
		t.Error("Zombie = false for an exited, unreaped process")
	}
	if _, err := ReadMemory(pid); err == nil {
		t.Error("ReadMemory of a zombie succeeded; want an error (no memory lines)")
	}
	_ = cmd.Wait()
	if _, err := ReadStat(pid); err == nil {
		t.Error("ReadStat of a reaped process succeeded")
	}
	if !Zombie(pid) {
		t.Error("Zombie = false for a process that is gone")
	}
	if GroupAlive(pid) {
		t.Error("GroupAlive = true for a group that never existed")
	}
}

func TestReadMemory(t *testing.T) {
	before, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSS <= 0 || before.Peak < before.RSS || before.Anon <= 0 {
		t.Fatalf("ReadMemory(self) = %+v, want RSS > 0, Peak >= RSS, Anon > 0", before)
	}
	// 32 MiB touched page by page raise the high-water mark by as much.
	buf := make([]byte, 32<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	after, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.Peak < before.RSS+30<<10 {
		t.Errorf("peak after touching 32 MiB = %d kB, want at least %d kB", after.Peak, before.RSS+30<<10)
	}
	_ = buf[len(buf)-1]
	if after.File <= 0 {
		t.Errorf("RssFile of this process = %d kB, want > 0 (its binary is mapped)", after.File)
	}
}

func TestReadUsage(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A Go program has several threads; stdin, stdout, stderr and f are open.
	if u.Threads < 2 || u.FDs < 4 {
		t.Errorf("ReadUsage(self) = %+v, want at least 2 threads and 4 descriptors", u)
	}
	if _, err := ReadUsage(1 << 30); err == nil {
		t.Error("ReadUsage of a pid that cannot exist succeeded")
	}
}

func TestStopGroupEndsACooperativeGroupWithinGrace(t *testing.T) {
	g := startGroup(t, "sleep 30 & wait")
	waitFor(t, "the sleep", func() bool { return len(Children(g.pid)) == 1 })
	sleeper := Children(g.pid)[0]
	start := time.Now()
	StopGroup(Group{Leader: g.pid, Exited: g.exited}, time.Minute)
	if took := time.Since(start); took >= time.Minute {
		t.Fatalf("StopGroup took %v: SIGTERM should have ended the group before the grace ran out", took)
	}
	if !isClosed(g.exited) || GroupAlive(g.pid) {
		t.Fatal("StopGroup returned with the leader or its group still there")
	}
	if _, err := ReadStat(sleeper); err == nil {
		t.Errorf("the group's sleep (pid %d) is still there", sleeper)
	}
}

func TestStopGroupKillsWhatIgnoresTERM(t *testing.T) {
	// The trap is inherited: the sleep ignores SIGTERM as well.
	g := startGroup(t, `trap "" TERM; sleep 30 & wait`)
	waitFor(t, "the sleep", func() bool { return len(Children(g.pid)) == 1 })
	StopGroup(Group{Leader: g.pid, Exited: g.exited}, 100*time.Millisecond)
	if !isClosed(g.exited) {
		t.Fatal("StopGroup returned before the leader was reaped")
	}
	waitFor(t, "the group to be gone after SIGKILL", func() bool { return !GroupAlive(g.pid) })
	if err := g.cmd.ProcessState.Sys().(syscall.WaitStatus); !err.Signaled() || err.Signal() != syscall.SIGKILL {
		t.Errorf("the leader ended with %v, want SIGKILL", g.cmd.ProcessState)
	}
}

func TestStopGroupEscapedDescendants(t *testing.T) {
	// setsid puts the sleep in a group (and session) of its own.
	g := startGroup(t, "setsid sleep 30 & wait")
	var escaped int
	waitFor(t, "the escaped sleep", func() bool {
		for _, p := range Descendants(g.pid) {
			if st, err := ReadStat(p); err == nil && st.PGID == p && p != g.pid {
				escaped = p
				return true
			}
		}
		return false
	})
	t.Cleanup(func() { _ = syscall.Kill(-escaped, syscall.SIGKILL) })
	StopGroup(Group{Leader: g.pid, Exited: g.exited, Escaped: true}, 5*time.Second)
	// Re-parented to init (or a subreaper), which reaps it once killed.
	waitFor(t, "the escaped sleep to be killed", func() bool { return Zombie(escaped) })
}
