// Package scripttest holds the testscript commands and setup shared by the
// scenario suites of the watchdog, the emulator and the conformance suite:
// a real callback receiver, HTTP requests, process checks and timing.
package scripttest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"

	"nanofaas.dev/devkit/freeport"
	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/proctree"
)

type stateKey struct{}

// state is per script.
type state struct {
	receivers []*receiver.Receiver
	started   time.Time
	// requests are the http-start requests still to be waited for.
	requests map[string]<-chan httpOutcome
}

func scriptState(ts *testscript.TestScript) *state {
	return ts.Value(stateKey{}).(*state)
}

// Setup prepares a script's environment: FIXTURES points at fixturesDir,
// which is put on PATH together with a fast python3 (not a pyenv shim), and
// the script's receivers are closed when it ends.
func Setup(fixturesDir string) func(*testscript.Env) error {
	return func(env *testscript.Env) error {
		abs, err := filepath.Abs(fixturesDir)
		if err != nil {
			return err
		}
		st := &state{started: time.Now()}
		env.Values[stateKey{}] = st
		env.Defer(func() {
			for _, r := range st.receivers {
				r.Close()
			}
		})
		bin := filepath.Join(env.WorkDir, ".bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			return err
		}
		if py := FastPython(); py != "" {
			if err := os.Symlink(py, filepath.Join(bin, "python3")); err != nil {
				return err
			}
		}
		// Java ignores TMPDIR: without this, every JVM a script starts
		// (the Spring Boot examples' Tomcat) leaves directories in /tmp,
		// and /tmp/hsperfdata_<user> for its performance counters.
		env.Setenv("JAVA_TOOL_OPTIONS", "-Djava.io.tmpdir="+env.Getenv("TMPDIR")+" -XX:-UsePerfData")
		env.Setenv("FIXTURES", abs)
		env.Setenv("PATH", bin+string(os.PathListSeparator)+abs+string(os.PathListSeparator)+env.Getenv("PATH"))
		return nil
	}
}

// FastPython returns a python3 that starts quickly: the system one when
// present, else whatever python3 is on PATH.
func FastPython() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	p, _ := exec.LookPath("python3")
	return p
}

// Conditions answers the custom conditions: "unshare" (a PID namespace can be
// made here).
func Conditions(cond string) (bool, error) {
	switch cond {
	case "unshare":
		err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run()
		return err == nil, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// Commands returns the custom commands.
func Commands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"receiver":    cmdReceiver,
		"callbacks":   cmdCallbacks,
		"pids-dead":   cmdPidsDead,
		"http":        cmdHTTP,
		"wait-http":   cmdWaitHTTP,
		"freeport":    cmdFreeport,
		"stopwatch":   cmdStopwatch,
		"setenv-file": cmdSetenvFile,
		"exit-code":   cmdExitCode,
		"waitfile":    cmdWaitFile,
		"kill-pid":    cmdKillPid,
		"http-start":  cmdHTTPStart,
		"http-wait":   cmdHTTPWait,
		"wait-body":   cmdWaitBody,
		"logrecord":   cmdLogRecord,
	}
}

func parse(ts *testscript.TestScript, name string, args []string, define func(fs *flag.FlagSet)) []string {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	define(fs)
	if err := fs.Parse(args); err != nil {
		ts.Fatalf("%s: %v", name, err)
	}
	return fs.Args()
}

// receiver [-fail N] [-status S] [-reset] [-hang] [-statuses S1,S2,...]
// [-delay D] [-location URL] [-listen ADDR] [-var NAME] starts a callback
// receiver and sets $CALLBACK_URL (or $NAME) to its base URL. -statuses
// answers successive requests with those statuses (0: reset), then 200.
func cmdReceiver(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! receiver")
	}
	var b receiver.Behaviour
	varName := "CALLBACK_URL"
	statuses := ""
	parse(ts, "receiver", args, func(fs *flag.FlagSet) {
		fs.IntVar(&b.FailFirst, "fail", 0, "fail the first N requests (-1: all)")
		fs.IntVar(&b.FailStatus, "status", 503, "failure status")
		fs.BoolVar(&b.Reset, "reset", false, "reset the connection on failure")
		fs.BoolVar(&b.Hang, "hang", false, "never answer a failure")
		fs.StringVar(&b.Listen, "listen", "", "listen address")
		fs.StringVar(&varName, "var", varName, "variable to set")
		fs.StringVar(&statuses, "statuses", "", "statuses of successive requests (0: reset), then 200")
		fs.DurationVar(&b.Delay, "delay", 0, "hold every answer back this long")
		fs.StringVar(&b.Location, "location", "", "Location header of failure answers")
	})
	for _, s := range strings.Split(statuses, ",") {
		if s = strings.TrimSpace(s); s != "" {
			n, err := strconv.Atoi(s)
			ts.Check(err)
			b.Statuses = append(b.Statuses, n)
		}
	}
	r, err := receiver.Start(b)
	ts.Check(err)
	st := scriptState(ts)
	st.receivers = append(st.receivers, r)
	ts.Setenv(varName, r.Base)
}

// callbacks [-wait D] [-r I] [-save FILE] N waits until N results were delivered to
// receiver I (default the first), then prints them and the request count.
// With !, it checks that fewer than N were delivered within the wait.
func cmdCallbacks(ts *testscript.TestScript, neg bool, args []string) {
	wait := 15 * time.Second
	idx := 0
	save := ""
	rest := parse(ts, "callbacks", args, func(fs *flag.FlagSet) {
		fs.DurationVar(&wait, "wait", wait, "how long to wait")
		fs.IntVar(&idx, "r", 0, "receiver index")
		fs.StringVar(&save, "save", "", "write the last delivered body to this file")
	})
	if len(rest) != 1 {
		ts.Fatalf("usage: callbacks [-wait D] [-r I] N")
	}
	n, err := strconv.Atoi(rest[0])
	ts.Check(err)
	st := scriptState(ts)
	if idx >= len(st.receivers) {
		ts.Fatalf("callbacks: no receiver %d; start one with the receiver command", idx)
	}
	r := st.receivers[idx]
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	delivered, err := r.WaitDelivered(ctx, n)
	if neg {
		if err == nil {
			ts.Fatalf("callbacks: %d delivered, expected fewer than %d", len(delivered), n)
		}
		fmt.Fprintf(ts.Stdout(), "requests: %d\n", len(r.Calls()))
		return
	}
	if err != nil {
		ts.Fatalf("callbacks: %v", err)
	}
	if save != "" {
		ts.Check(os.WriteFile(ts.MkAbs(save), delivered[len(delivered)-1].Body, 0o644))
	}
	for _, c := range delivered {
		if save != "" && len(c.Body) > 4096 {
			c.Body = append(c.Body[:4096:4096], "...(saved)"...)
		}
		fmt.Fprintf(ts.Stdout(), "path: %s\nexecution-id: %s\ntrace-id: %s\ncontent-type: %s\nbody: %s\n",
			c.Path, c.Header.Get("X-Execution-Id"), c.Header.Get("X-Trace-Id"), c.Header.Get("Content-Type"), c.Body)
	}
	fmt.Fprintf(ts.Stdout(), "requests: %d\n", len(r.Calls()))
}

// pids-dead DIR checks that no process whose pid is in a file of DIR is
// still running (zombies count as dead), waiting up to 3s.
func cmdPidsDead(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: pids-dead DIR")
	}
	dir := ts.MkAbs(args[0])
	entries, err := os.ReadDir(dir)
	ts.Check(err)
	if len(entries) == 0 {
		ts.Fatalf("pids-dead: no pid files in %s", dir)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		ts.Check(err)
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		ts.Check(err)
		for running(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive := running(pid); alive != neg {
			if neg {
				ts.Fatalf("pids-dead: %s (pid %d) is not running", e.Name(), pid)
			}
			ts.Fatalf("pids-dead: %s (pid %d) is still running", e.Name(), pid)
		}
		if !neg {
			fmt.Fprintf(ts.Stdout(), "%s dead\n", e.Name())
		}
	}
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	return !proctree.Zombie(pid)
}

// http [-H 'K: V']... [-d BODY | -f FILE] [-timeout D] METHOD URL makes a
// request and prints "status: N", the chosen response headers and the body.
func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	ex := prepareHTTP(ts, "http", args)
	out, err := ex.run()
	if err != nil {
		if neg {
			fmt.Fprintf(ts.Stdout(), "error: %v\n", err)
			return
		}
		ts.Fatalf("http: %v", err)
	}
	fmt.Fprint(ts.Stdout(), out)
	if neg {
		ts.Fatalf("http: request succeeded; ! http only expects a transport error")
	}
}

// httpExchange is a request the http commands make.
type httpExchange struct {
	req    *http.Request
	client *http.Client
	show   string
	body   io.Closer
}

// prepareHTTP parses the http command's arguments into a request.
func prepareHTTP(ts *testscript.TestScript, name string, args []string) *httpExchange {
	var headers multiFlag
	var body, file, show string
	timeout := 30 * time.Second
	rest := parse(ts, name, args, func(fs *flag.FlagSet) {
		fs.Var(&headers, "H", "request header")
		fs.StringVar(&body, "d", "", "request body")
		fs.StringVar(&file, "f", "", "request body file")
		fs.StringVar(&show, "show", "Content-Type,Retry-After,X-Execution-Id", "response headers to print")
		fs.DurationVar(&timeout, "timeout", timeout, "request timeout")
	})
	if len(rest) != 2 {
		ts.Fatalf("usage: %s [-H 'K: V'] [-d BODY | -f FILE] METHOD URL", name)
	}
	ex := &httpExchange{client: &http.Client{Timeout: timeout}, show: show}
	var reader io.Reader
	if file != "" {
		f, err := os.Open(ts.MkAbs(file))
		ts.Check(err)
		ex.body = f
		reader = f
	} else if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(rest[0], rest[1], reader)
	ts.Check(err)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	ex.req = req
	return ex
}

// run makes the request and returns what the http command prints: the
// status, the chosen response headers and the body.
func (ex *httpExchange) run() (string, error) {
	if ex.body != nil {
		defer ex.body.Close()
	}
	resp, err := ex.client.Do(ex.req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "status: %d\n", resp.StatusCode)
	for _, h := range strings.Split(ex.show, ",") {
		if v := resp.Header.Get(h); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", strings.ToLower(h), v)
		}
	}
	fmt.Fprintf(&b, "body: %s\n", data)
	return b.String(), nil
}

// wait-http [-status N] [-timeout D] URL polls URL until it answers N (200).
// With !, it waits until URL stops answering at all.
func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	status := 200
	timeout := 20 * time.Second
	rest := parse(ts, "wait-http", args, func(fs *flag.FlagSet) {
		fs.IntVar(&status, "status", status, "expected status")
		fs.DurationVar(&timeout, "timeout", timeout, "how long to wait")
	})
	if len(rest) != 1 {
		ts.Fatalf("usage: wait-http [-status N] [-timeout D] URL")
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no attempt"
	for time.Now().Before(deadline) {
		resp, err := client.Get(rest[0])
		if err != nil {
			last = err.Error()
			if neg {
				return
			}
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			last = "status " + strconv.Itoa(resp.StatusCode)
			if !neg && resp.StatusCode == status {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("wait-http %s: gave up after %v (last: %s)", rest[0], timeout, last)
}

// freeport VAR sets $VAR to a TCP port that is free on every address,
// below the kernel's ephemeral range, and not yet handed out to another
// script of this test binary (see package freeport).
func cmdFreeport(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	port, err := freeport.Pick()
	ts.Check(err)
	ts.Setenv(args[0], strconv.Itoa(port))
}

// stopwatch start | stopwatch below D: time a step of the script.
func cmdStopwatch(ts *testscript.TestScript, neg bool, args []string) {
	st := scriptState(ts)
	switch {
	case len(args) == 1 && args[0] == "start":
		st.started = time.Now()
	case len(args) == 2 && args[0] == "below":
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		took := time.Since(st.started)
		if (took < d) == neg {
			ts.Fatalf("stopwatch: %v elapsed, expected %s %v", took.Round(time.Millisecond), map[bool]string{false: "below", true: "at least"}[neg], d)
		}
		fmt.Fprintf(ts.Stdout(), "elapsed: %v\n", took.Round(time.Millisecond))
	default:
		ts.Fatalf("usage: stopwatch start | stopwatch below DURATION")
	}
}

// setenv-file VAR FILE sets $VAR to the content of FILE, without its final newline.
func cmdSetenvFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: setenv-file VAR FILE")
	}
	data, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	ts.Setenv(args[0], strings.TrimRight(string(data), "\n"))
}

// exit-code N CMD [ARG...] runs CMD like exec and checks that it exits with status N.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: exit-code N CMD [ARG...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		got = exitErr.ExitCode()
	} else if err != nil {
		ts.Fatalf("exit-code: %v", err)
	}
	if (got == want) == neg {
		ts.Fatalf("exit-code: %s exited with status %d, want %s%d", args[1], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// waitfile [-timeout D] FILE waits until FILE exists.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	timeout := 15 * time.Second
	rest := parse(ts, "waitfile", args, func(fs *flag.FlagSet) {
		fs.DurationVar(&timeout, "timeout", timeout, "how long to wait")
	})
	if len(rest) != 1 {
		ts.Fatalf("usage: waitfile [-timeout D] FILE")
	}
	path := ts.MkAbs(rest[0])
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("waitfile: %s did not appear within %v", path, timeout)
}

// kill-pid SIGNAL FILE sends SIGNAL (a name such as TERM or USR1) to the
// pid written in FILE.
func cmdKillPid(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: kill-pid SIGNAL FILE")
	}
	sig := unix.SignalNum("SIG" + strings.TrimPrefix(strings.ToUpper(args[0]), "SIG"))
	if sig == 0 {
		ts.Fatalf("kill-pid: unknown signal %q", args[0])
	}
	data, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	ts.Check(err)
	ts.Check(syscall.Kill(pid, sig))
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
