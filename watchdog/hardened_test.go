package watchdog_test

// The watchdog in a hardened pod: as a non-root user (nobody), and with a
// read-only root filesystem where only the FILE paths are writable. These
// run the real binary (the test binary, which testscript installs as
// "watchdog" in PATH) under setpriv and in a private mount namespace.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nanofaas.dev/devkit/freeport"
	"nanofaas.dev/devkit/receiver"
)

const nobody = "65534"

// The unprivileged watchdog must reach its binary, the fixture runtimes and
// its FILE paths. The clone may be under a directory only its owner can
// enter (a home directory, /root), and so may TMPDIR, and the umask may be
// 077: so nothing nobody needs is used in place. hardenedPod copies it into a
// directory it makes, with explicit modes, and removes that directory when
// the test ends.

// hardenedPod returns a pod whose binary and fixture runtimes are copies in
// a fresh directory that user nobody can enter. The directory is made under
// TMPDIR, or under /tmp when nobody cannot reach it there (TMPDIR under a
// 0700 directory); the test skips loudly when neither works.
func hardenedPod(t *testing.T) pod {
	t.Helper()
	src, err := exec.LookPath("watchdog")
	if err != nil {
		t.Fatalf("the watchdog binary is not in PATH: %v", err)
	}
	bases := []string{os.TempDir()}
	if os.TempDir() != "/tmp" {
		bases = append(bases, "/tmp")
	}
	var tried []string
	for _, base := range bases {
		dir, err := nobodyDir(t, base, src)
		if err == nil {
			fixtures := filepath.Join(dir, "runtimes")
			if err := copyTree(fixturesDir(t), fixtures); err != nil {
				t.Fatal(err)
			}
			return pod{dir: dir, bin: filepath.Join(dir, "watchdog"), fixtures: fixtures}
		}
		tried = append(tried, err.Error())
	}
	skipLoudly(t, "user nobody cannot reach the watchdog in any directory made here (%s); set TMPDIR to a directory nobody can enter; the non-root run is NOT TESTED", strings.Join(tried, "; "))
	return pod{}
}

// nobodyDir makes a 0755 directory under base, removed when the test ends,
// copies the watchdog binary src into it, and checks that user nobody can
// reach it there.
func nobodyDir(t *testing.T, base, src string) (string, error) {
	t.Helper()
	dir, err := os.MkdirTemp(base, "wd-hardened-")
	if err != nil {
		return "", fmt.Errorf("cannot make a directory in %s: %w", base, err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cannot remove %s: %v", dir, err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot make %s enterable: %w", dir, err)
	}
	bin := filepath.Join(dir, "watchdog")
	if err := copyFile(src, bin, 0o755); err != nil {
		return "", err
	}
	// Asked of a shell running as nobody: setpriv itself may still exec a
	// program that nobody cannot reach, since it drops root's capabilities
	// only at that exec.
	probe := exec.Command("setpriv", "--reuid="+nobody, "--regid="+nobody, "--clear-groups", "--", "sh", "-c", `test -x "$1"`, "sh", bin)
	probe.Dir = "/"
	if out, err := probe.CombinedOutput(); err != nil {
		return "", fmt.Errorf("user nobody cannot reach %s (%v%s)", bin, err, strings.TrimSpace(" "+string(out)))
	}
	return dir, nil
}

// copyTree copies the regular files under src into dst, readable by
// everyone (and executable by everyone when executable at all), whatever
// the umask and the modes in the clone.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("cannot read the fixtures: %w", err)
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return fmt.Errorf("cannot copy %s: %w", path, err)
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("cannot copy %s: %w", path, err)
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("cannot copy %s: %w", path, err)
			}
			if err := os.Chmod(target, 0o755); err != nil {
				return fmt.Errorf("cannot copy %s: %w", path, err)
			}
			return nil
		case !info.Mode().IsRegular():
			return nil
		case info.Mode()&0o111 != 0:
			return copyFile(path, target, 0o755)
		default:
			return copyFile(path, target, 0o644)
		}
	})
}

// copyFile copies src to dst with exactly the given mode.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("cannot copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("cannot copy %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("cannot copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("cannot copy %s to %s: %w", src, dst, err)
	}
	// The umask may have taken bits away.
	if err := os.Chmod(dst, mode); err != nil {
		return fmt.Errorf("cannot copy %s to %s: %w", src, dst, err)
	}
	return nil
}

// writableDir makes a directory in the pod's directory that nobody can
// write to.
func (p pod) writableDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(p.dir, name)
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// skipLoudly skips with a message that shows without -v too.
func skipLoudly(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "SKIP %s: %s\n", t.Name(), msg)
	t.Skip(msg)
}

func needNobody(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipLoudly(t, "switching to user nobody needs root; the non-root run is NOT TESTED")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		skipLoudly(t, "setpriv (util-linux) is missing; the non-root run is NOT TESTED")
	}
}

func needMountNamespace(t *testing.T) {
	t.Helper()
	if err := exec.Command("unshare", "--mount", "--propagation", "private", "true").Run(); err != nil {
		skipLoudly(t, "cannot make a mount namespace (%v); the read-only root filesystem run is NOT TESTED", err)
	}
}

// pod says how to run the watchdog.
type pod struct {
	// dir holds bin and fixtures, all reachable by user nobody.
	dir      string
	bin      string
	fixtures string
	// readOnlyRoot remounts / read-only in a private mount namespace, with
	// a small tmpfs at rw (the only writable place besides /dev and /proc).
	// /tmp too when it is a file system of its own (a tmpfs on many
	// distributions), since the default FILE paths are there.
	readOnlyRoot bool
	rw           string
}

func (p pod) command(env []string) *exec.Cmd {
	asNobody := []string{"setpriv", "--reuid=" + nobody, "--regid=" + nobody, "--clear-groups", "--", p.bin}
	var cmd *exec.Cmd
	if p.readOnlyRoot {
		script := `mount -t tmpfs -o size=1m,mode=1777 tmpfs "$HARDENED_RW" && mount -o remount,bind,ro / &&
			{ ! mountpoint -q /tmp || mount -o remount,bind,ro /tmp; } && exec "$@"`
		cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh"}, asNobody...)...)
		env = append(env, "HARDENED_RW="+p.rw)
	} else {
		cmd = exec.Command(asNobody[0], asNobody[1:]...)
	}
	cmd.Env = env
	cmd.Dir = p.dir
	// Wait returns even if something still holds the output pipes.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// fixturesDir is the clone's fixture runtimes (not for user nobody: see
// hardenedPod).
func fixturesDir(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("../fixtures/runtimes")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// env is the watchdog's environment: the pod's fixture runtimes on PATH.
func (p pod) env(extra ...string) []string {
	return append([]string{
		"PATH=" + p.fixtures + ":/usr/local/bin:/usr/bin:/bin",
		"FIXTURES=" + p.fixtures,
		"KILL_GRACE_MS=200",
		"CALLBACK_BACKOFF_MS=20",
	}, extra...)
}

// oneShot runs a one-shot invocation in the pod and returns the result the
// receiver got.
func (p pod) oneShot(t *testing.T, env ...string) string {
	t.Helper()
	recv, err := receiver.Start(receiver.Behaviour{})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	cmd := p.command(p.env(append(env, "EXECUTION_ID=hardened", "CALLBACK_URL="+recv.Base)...))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("watchdog: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := recv.WaitDelivered(ctx, 1)
	if err != nil {
		t.Fatalf("no result: %v\n%s", err, out)
	}
	return string(got[0].Body)
}

// server runs a warm HTTP runtime in the pod, invokes it once and stops it
// with SIGTERM; it returns the answer.
func (p pod) server(t *testing.T) string {
	t.Helper()
	wport, rport := freePort(t), freePort(t)
	cmd := p.command(p.env("EXECUTION_MODE=WARM", fmt.Sprintf("WARM_PORT=%d", wport),
		fmt.Sprintf("RUNTIME_URL=http://127.0.0.1:%d/invoke", rport), "WATCHDOG_CMD=http_runtime.py warm"))
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d", wport)
	waitReady(t, url, &logs)
	resp, err := http.Post(url+"/invoke", "application/json", strings.NewReader(`{"execution_id":"hardened-warm","payload":{"n":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The pid of the unshare/sh/setpriv chain is the watchdog's: each execs the next.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("the watchdog exited with %v after SIGTERM:\n%s", waitErr, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the watchdog did not stop within 10s of SIGTERM:\n%s", logs.String())
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("warm invocation: %d %s\n%s", resp.StatusCode, body, logs.String())
	}
	return string(body)
}

// freePort is a port for a process that binds it later (see package freeport).
func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// whoami is a STDIO function that says which user runs it.
const whoami = `WATCHDOG_CMD=sh -c 'cat >/dev/null; printf "{\"uid\":%s}" "$(id -u)"'`

func TestHardenedRunsAsNobody(t *testing.T) {
	needNobody(t)
	p := hardenedPod(t)

	t.Run("stdio", func(t *testing.T) {
		if got := p.oneShot(t, "EXECUTION_MODE=STDIO", whoami); !strings.Contains(got, `"output":{"uid":65534}`) {
			t.Errorf("result %s, want the function run as uid 65534", got)
		}
	})
	t.Run("file", func(t *testing.T) {
		dir := p.writableDir(t, "file")
		got := p.oneShot(t, "EXECUTION_MODE=FILE", "FIXTURE_IO=file", "WATCHDOG_CMD=fn.py upper",
			`INVOCATION_PAYLOAD={"input":"nobody"}`, "INPUT_FILE="+dir+"/in.json", "OUTPUT_FILE="+dir+"/out.json")
		if !strings.Contains(got, `"output":{"input":"NOBODY"}`) {
			t.Errorf("result %s", got)
		}
	})
	t.Run("warm-http", func(t *testing.T) {
		if got := p.server(t); !strings.Contains(got, `"success":true`) {
			t.Errorf("answer %s", got)
		}
	})
}

func TestHardenedReadOnlyRootFilesystem(t *testing.T) {
	needNobody(t)
	needMountNamespace(t)
	p := hardenedPod(t)
	// The tmpfs mounted there is 1777; nobody reaches it through p.dir.
	p.readOnlyRoot, p.rw = true, p.writableDir(t, "rw")

	t.Run("file-on-tmpfs", func(t *testing.T) {
		got := p.oneShot(t, "EXECUTION_MODE=FILE", "FIXTURE_IO=file", "WATCHDOG_CMD=fn.py upper",
			`INVOCATION_PAYLOAD={"input":"read-only root"}`, "INPUT_FILE="+p.rw+"/in.json", "OUTPUT_FILE="+p.rw+"/out.json")
		if !strings.Contains(got, `"output":{"input":"READ-ONLY ROOT"}`) {
			t.Errorf("result %s", got)
		}
	})
	t.Run("file-on-the-read-only-root", func(t *testing.T) {
		// The default FILE paths are in /tmp, read-only here: a clear error.
		got := p.oneShot(t, "EXECUTION_MODE=FILE", "WATCHDOG_CMD=fn.py upper")
		if !strings.Contains(got, `"code":"SPAWN_ERROR","message":"OUTPUT_FILE /tmp/output.json cannot be written: remove /tmp/output.json: read-only file system`) {
			t.Errorf("result %s, want a SPAWN_ERROR naming the read-only OUTPUT_FILE", got)
		}
	})
	t.Run("stdio", func(t *testing.T) {
		if got := p.oneShot(t, "EXECUTION_MODE=STDIO", whoami); !strings.Contains(got, `"output":{"uid":65534}`) {
			t.Errorf("result %s", got)
		}
	})
	t.Run("warm-http", func(t *testing.T) {
		if got := p.server(t); !strings.Contains(got, `"success":true`) {
			t.Errorf("answer %s", got)
		}
	})
}
