package watchdog_test

// End-to-end checks of what a function (or a stuck log reader) can do to
// the watchdog process itself: the real binary, real processes, real pipes.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// snoop is a STDIO function that tries to read its parent's (the
// watchdog's) environment, and checks that its own children can still read
// its environment (it is dumpable: execve reset the flag).
const snoop = `#!/bin/sh
cat >/dev/null
if cat /proc/$PPID/environ >/dev/null 2>&1; then
  if tr '\0' '\n' </proc/$PPID/environ | grep -q '^WARM_AUTH_TOKEN='; then parent=token-read; else parent=read-without-token; fi
else
  parent=unreadable
fi
if cat /proc/$$/environ >/dev/null 2>&1; then self=readable; else self=unreadable; fi
printf '{"parent":"%s","self":"%s","owner":"%s"}' "$parent" "$self" "$(stat -c %u /proc/$$/environ)"
`

// TestSecurityFunctionCannotReadTheWatchdogsEnvironment runs the watchdog
// and its function as the same user (nobody): the function must not read
// WARM_AUTH_TOKEN from /proc/<watchdog>/environ, while its own children can
// still read its /proc files.
func TestSecurityFunctionCannotReadTheWatchdogsEnvironment(t *testing.T) {
	needNobody(t)
	p := hardenedPod(t)
	script := filepath.Join(p.dir, "snoop.sh")
	if err := os.WriteFile(script, []byte(snoop), 0o755); err != nil {
		t.Fatal(err)
	}
	wport := freePort(t)
	cmd := p.command(p.env("WARM=true", "EXECUTION_MODE=STDIO", fmt.Sprintf("WARM_PORT=%d", wport),
		"WARM_AUTH_TOKEN=do-not-leak-me", "WATCHDOG_CMD="+script))
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	stop := startServer(t, cmd, &logs)
	base := fmt.Sprintf("http://127.0.0.1:%d", wport)
	waitReady(t, base, &logs)

	req, _ := http.NewRequest(http.MethodPost, base+"/invoke", strings.NewReader(`{"execution_id":"snoop","payload":null}`))
	req.Header.Set("Authorization", "Bearer do-not-leak-me")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	stop()
	var got struct {
		Output struct{ Parent, Self, Owner string }
	}
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("answer %d %s (%v)\n%s", resp.StatusCode, body, err, logs.String())
	}
	if got.Output.Parent != "unreadable" {
		t.Errorf("the function read the watchdog's environment (%s): WARM_AUTH_TOKEN is exposed", got.Output.Parent)
	}
	if got.Output.Self != "readable" || got.Output.Owner != nobody {
		t.Errorf("the function's own /proc files: %s, owner uid %s; want readable by its children, owned by %s (the function must stay dumpable)",
			got.Output.Self, got.Output.Owner, nobody)
	}
	if strings.Contains(logs.String(), "do-not-leak-me") {
		t.Errorf("the token appears in the watchdog's output:\n%s", logs.String())
	}
}

// TestSecurityBlockedStderrDoesNotStallInvocations gives the watchdog a
// stderr pipe that nobody reads: invocations and /health must keep being
// answered, the lost lines counted, and reported once the pipe drains.
func TestSecurityBlockedStderrDoesNotStallInvocations(t *testing.T) {
	bin, err := exec.LookPath("watchdog")
	if err != nil {
		t.Fatalf("the watchdog binary is not in PATH: %v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The smallest pipe: it fills after a few invocations.
	_, _ = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096)

	wport := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = pod{fixtures: fixturesDir(t)}.env("WARM=true", "EXECUTION_MODE=STDIO", fmt.Sprintf("WARM_PORT=%d", wport),
		`WATCHDOG_CMD=sh -c 'cat; printf "%016384d\n" 0 >&2'`)
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", wport)
	client := &http.Client{Timeout: 5 * time.Second}
	waitReady(t, base, nil) // its log is the blocked pipe

	const calls = 200
	for i := range calls {
		resp, err := client.Post(base+"/invoke", "application/json", strings.NewReader(fmt.Sprintf(`{"execution_id":"blocked-%d","payload":{"n":%d}}`, i, i)))
		if err != nil {
			t.Fatalf("invocation %d with stderr blocked: %v (logging must never block invocations)", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf(`"output":{"n":%d}`, i); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("invocation %d: %d %s", i, resp.StatusCode, body)
		}
		if i%50 == 0 {
			resp, err := client.Get(base + "/health")
			if err != nil {
				t.Fatalf("/health with stderr blocked: %v", err)
			}
			resp.Body.Close()
		}
	}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^watchdog_log_lines_dropped_total(?:\{[^}]*\})? (\d+)$`).FindSubmatch(text)
	if m == nil {
		t.Fatalf("no watchdog_log_lines_dropped_total in /metrics:\n%s", text)
	}
	if n, _ := strconv.Atoi(string(m[1])); n == 0 {
		t.Errorf("watchdog_log_lines_dropped_total is 0 after %d invocations into a blocked pipe", calls)
	}

	// Now the pipe drains: the watchdog says how many lines were lost.
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 256<<10), 256<<10)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// A new invocation makes the watchdog write again.
	if resp, err := client.Post(base+"/invoke", "application/json", strings.NewReader(`{"execution_id":"after","payload":1}`)); err == nil {
		resp.Body.Close()
	}
	timeout := time.After(10 * time.Second)
	for found := false; !found; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stderr closed before the dropped-lines record")
			}
			found = strings.Contains(l, `"msg":"log lines dropped`)
		case <-timeout:
			t.Fatal("no \"log lines dropped\" record once the pipe drained")
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		for range lines {
		}
	}()
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("the watchdog exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the watchdog did not stop within 10s of SIGTERM")
	}
}

// syncBuffer is a strings.Builder safe for the two output pumps of exec.Cmd.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer starts cmd and returns a function that stops it with
// SIGTERM (SIGKILL after 10 s) and waits for it; also run at cleanup.
func startServer(t *testing.T, cmd *exec.Cmd, logs *syncBuffer) func() {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Errorf("the watchdog did not stop within 10s of SIGTERM:\n%s", logs.String())
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitReady waits until /health on base answers 200; logs (when not nil)
// is shown if it never does.
func waitReady(t *testing.T, base string, logs fmt.Stringer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			shown := ""
			if logs != nil {
				shown = logs.String()
			}
			t.Fatalf("the watchdog did not become ready:\n%s", shown)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
