package process

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"nanofaas.dev/watchdog/procio"
)

func TestPumpLinesSplitsLongLines(t *testing.T) {
	long := strings.Repeat("a", maxLine+10)
	in := "short\n" + long + "\nno newline at end"
	var out recorder
	var tail procio.Tail
	pumpLines(strings.NewReader(in), &out, &tail)
	want := []string{"short\n", strings.Repeat("a", maxLine) + "\n", strings.Repeat("a", 10) + "\n", "no newline at end\n"}
	if diff := cmp.Diff(want, out.writes); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	if got := tail.String(); len(got) != procio.DefaultTailSize || !strings.HasSuffix(got, "no newline at end") {
		t.Errorf("tail is %d bytes ending %q", len(got), got[len(got)-20:])
	}
}

type recorder struct{ writes []string }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func TestCaptureStopsAtLimit(t *testing.T) {
	c := &Capture{limit: 10}
	overflows := 0
	c.pump(strings.NewReader(strings.Repeat("x", 100)), func() { overflows++ })
	if !c.overflow || overflows != 1 || c.buf != nil {
		t.Errorf("overflow=%v calls=%d buf=%q", c.overflow, overflows, c.buf)
	}
	c = &Capture{limit: 10}
	c.pump(strings.NewReader("0123456789"), nil)
	if c.overflow || string(c.buf) != "0123456789" {
		t.Errorf("exactly the limit: overflow=%v buf=%q", c.overflow, c.buf)
	}
}

func newManager(t *testing.T) *Manager {
	m := NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)), false)
	t.Cleanup(m.Close)
	return m
}

func TestStopKillsGroupIgnoringTerm(t *testing.T) {
	m := newManager(t)
	// The shell and its background sleep both ignore SIGTERM. The shell
	// writes the sleep's pid to a file once both are set up: the test
	// waits for that file before it stops them.
	ready := filepath.Join(t.TempDir(), "ready")
	c, err := m.StartChild(Options{Argv: []string{"sh", "-c", `trap "" TERM; sleep 60 & echo $! > "$1.tmp" && mv "$1.tmp" "$1"; wait`, "sh", ready}, Env: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	var pid string
	for deadline := time.Now().Add(30 * time.Second); pid == ""; {
		if data, err := os.ReadFile(ready); err == nil {
			pid = strings.TrimSpace(string(data))
		} else if time.Now().After(deadline) || c.Exited() {
			t.Fatalf("the shell did not write the background sleep's pid: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	c.Finish(300 * time.Millisecond)
	if took := time.Since(start); took < 300*time.Millisecond || took > 3*time.Second {
		t.Errorf("Finish took %v, want the grace then a kill", took)
	}
	if got := c.Exit(); got.Signal != syscall.SIGKILL {
		t.Errorf("exit = %v, want signal SIGKILL", got)
	}
	// SIGKILL is delivered at once, but the dying process can show as
	// running for a moment: allow it a bounded time to be gone.
	deadline := time.Now().Add(3 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || bytes.Contains(stat, []byte(") Z")) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("background sleep %s survived: %s", pid, stat)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSpawnErrors(t *testing.T) {
	m := newManager(t)
	dir := t.TempDir()
	notExecutable := dir + "/handler.sh"
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\necho {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notBinary := dir + "/data"
	if err := os.WriteFile(notBinary, []byte("\x00\x01 not an executable"), 0o755); err != nil {
		t.Fatal(err)
	}
	for argv0, want := range map[string]string{
		"/nonexistent/binary": "no such file or directory",
		"no-such-command-xyz": "executable file not found in PATH",
		notExecutable:         "permission denied (check that it is executable (chmod +x)",
		notBinary:             "exec format error (it is not a binary for this machine; a script needs a #! line)",
	} {
		_, err := m.StartChild(Options{Argv: []string{argv0}, Env: []string{"PATH=/usr/bin:/bin"}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", argv0, err, want)
		}
	}
}

func TestExitString(t *testing.T) {
	if got := (Exit{Code: 3}).String(); got != "exit code 3" {
		t.Errorf("got %q", got)
	}
	if got := (Exit{Code: -1, Signal: syscall.SIGKILL}).String(); got != "signal SIGKILL" {
		t.Errorf("got %q", got)
	}
}
