package emulator

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"nanofaas.dev/watchdog/proctree"
)

// TestMaxRSSIsTheFunctionsOwn runs functions through the real watchdog
// (one-shot STDIO) after this process, the watchdog's parent, has grown past
// 150 MB: ru_maxrss would report that peak for every function (a process
// started from Go inherits its parent's high-water mark); the figure must be
// the function's own.
func TestMaxRSSIsTheFunctionsOwn(t *testing.T) {
	for _, name := range []string{"watchdog", "memhog", "sh"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Fatalf("%s is not on PATH (TestMain installs watchdog and memhog): %v", name, err)
		}
	}
	wd, err := ExternalWatchdog("watchdog")
	if err != nil {
		t.Fatal(err)
	}
	ballast := make([]byte, 160<<20)
	for i := 0; i < len(ballast); i += 4096 {
		ballast[i] = 1
	}
	defer runtime.KeepAlive(ballast)
	if m, err := proctree.ReadMemory(os.Getpid()); err != nil || m.Peak < 150<<10 {
		t.Fatalf("this test process's peak is %d kB (%v), want it past 150 MB", m.Peak, err)
	}
	recv, err := StartReceiver("127.0.0.1:0", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	r := &Runner{Watchdog: wd, Log: io.Discard}
	run := func(id, command string) Outcome {
		fn := &Function{Name: "mem", Mode: "STDIO", Command: command, Dir: t.TempDir(), Env: map[string]string{}, Timeout: time.Minute}
		out := r.RunOnce(context.Background(), fn, Invocation{ID: id, Payload: json.RawMessage(`{}`)}, recv, recv.Base)
		t.Logf("%s: %s", command, out.Line())
		return out
	}

	if out := run("exec-hog", "memhog 64"); out.MaxRSSKB < 64<<10 || out.MaxRSSMethod != MethodSampled {
		t.Errorf("a function holding 64 MiB: max_rss_kb=%d (%s), want at least %d (%s)", out.MaxRSSKB, out.MaxRSSMethod, 64<<10, MethodSampled)
	}
	if out := run("exec-sleep", "sh -c 'sleep 0.5'"); out.MaxRSSKB <= 0 || out.MaxRSSKB >= 4<<10 {
		t.Errorf("sh -c 'sleep 0.5': max_rss_kb=%d, want a figure under 4 MB", out.MaxRSSKB)
	}
	// This one may end before the first sample: no figure ("-") is honest,
	// the parent's peak is not.
	if out := run("exec-exit", "sh -c 'exit 0'"); out.MaxRSSKB >= 4<<10 {
		t.Errorf("sh -c 'exit 0': max_rss_kb=%d, want under 4 MB (or none)", out.MaxRSSKB)
	}
}
