// Command soak drives a server-mode watchdog through many warm invocations
// on loopback and prints, at intervals, what the watchdog process holds: its
// resident memory, open file descriptors, OS threads, goroutines and Go
// heap. A leak shows as growth; a healthy watchdog stays flat.
//
//	go run ./cmd/soak                  # 100,000 calls
//	go run ./cmd/soak --calls 2000     # a short run, for CI
//
// The mix, decided by the call's number so that every run is the same:
// successes in the envelope form (most) and in the header form, function
// errors (the runtime answers 500), timeouts (which restart the runtime),
// refused bad requests, and results also posted to a callback receiver.
// Every answer is checked: status, code, and that the output is this call's.
//
// One binary plays three parts: the driver, the watchdog (the real
// nanofaas.dev/watchdog (Main), plus a goroutine that writes its goroutine
// count and heap to a file: a production watchdog has no debug endpoint),
// and the runtime (a small Go HTTP server). The figures are printed, never
// judged: soak exits 0 unless the watchdog crashed or an invocation got a
// wrong answer.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"nanofaas.dev/devkit/freeport"
	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog"
	"nanofaas.dev/watchdog/proctree"
)

// The parts the binary plays, chosen by its first argument.
const (
	roleWatchdog = "soak-watchdog"
	roleRuntime  = "soak-runtime"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case roleWatchdog:
			os.Exit(watchdogPart())
		case roleRuntime:
			os.Exit(runtimePart())
		}
	}
	os.Exit(drive(os.Args[1:], os.Stdout, os.Stderr))
}

// watchdogPart is the watchdog, with a reporter of what only the process
// itself can see: goroutines and the Go heap, written to $SOAK_STATS.
func watchdogPart() int {
	if path := os.Getenv("SOAK_STATS"); path != "" {
		go func() {
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				line := fmt.Sprintf("%d %d %d\n", runtime.NumGoroutine(), ms.HeapAlloc, ms.HeapObjects)
				_ = os.WriteFile(path+".tmp", []byte(line), 0o644)
				_ = os.Rename(path+".tmp", path)
				time.Sleep(200 * time.Millisecond)
			}
		}()
	}
	return watchdog.Main(context.Background(), "soak", nil, os.Environ(), os.Stdout, os.Stderr)
}

// runtimePart is the warm runtime: /health, and /invoke doing what the
// payload's "op" says: "ok" (answer n), "fail" (500), "sleep" (ms, then ok).
func runtimePart() int {
	pid := strconv.Itoa(os.Getpid())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("POST /invoke", func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Op string `json:"op"`
			N  int    `json:"n"`
			Ms int    `json:"ms"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &p)
		w.Header().Set("Content-Type", "application/json")
		switch p.Op {
		case "fail":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"failing on purpose"}`)
			return
		case "sleep":
			time.Sleep(time.Duration(p.Ms) * time.Millisecond)
		}
		fmt.Fprintf(w, `{"n":%d,"pid":%s}`, p.N, pid)
	})
	err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux)
	fmt.Fprintln(os.Stderr, "soak runtime:", err)
	return 1
}

type options struct {
	calls   int
	samples int
	verbose bool
}

func drive(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.calls, "calls", 100000, "number of invocations")
	fs.IntVar(&o.samples, "samples", 20, "how many times to print the watchdog's figures")
	fs.BoolVar(&o.verbose, "v", false, "pass the watchdog's own log through (warn level and up)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./cmd/soak [--calls N] [--samples N] [-v]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.calls < 1 || o.samples < 1 {
		fmt.Fprintln(stderr, "soak: --calls and --samples must be at least 1")
		return 2
	}
	s, err := newSoak(o, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 1
	}
	defer s.cleanup()
	return s.run()
}

type soak struct {
	o              options
	out, errOut    io.Writer
	dir            string
	base           string // the watchdog's URL
	cmd            *exec.Cmd
	exited         chan struct{}
	exitErr        error
	recv           *receiver.Receiver
	client         *http.Client
	wrong          int
	wrongShown     int
	counts         map[string]int
	callbackWanted map[string]<-chan receiver.Call
}

func newSoak(o options, stdout, stderr io.Writer) (*soak, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		return nil, err
	}
	s := &soak{o: o, out: stdout, errOut: stderr, dir: dir, exited: make(chan struct{}),
		counts: map[string]int{}, callbackWanted: map[string]<-chan receiver.Call{}}
	s.recv, err = receiver.Start(receiver.Behaviour{OKStatus: http.StatusNoContent, CountOnly: true})
	if err != nil {
		s.cleanup()
		return nil, err
	}
	wport, err := freeport.Pick()
	if err != nil {
		s.cleanup()
		return nil, err
	}
	rport, err := freeport.Pick()
	if err != nil {
		s.cleanup()
		return nil, err
	}
	s.base = fmt.Sprintf("http://127.0.0.1:%d", wport)
	level := "error"
	if o.verbose {
		level = "warn"
	}
	s.cmd = exec.Command(self, roleWatchdog)
	s.cmd.Env = append(os.Environ(),
		"EXECUTION_MODE=WARM",
		"WARM_PORT="+strconv.Itoa(wport),
		fmt.Sprintf("RUNTIME_URL=http://127.0.0.1:%d/invoke", rport),
		"WATCHDOG_CMD='"+strings.ReplaceAll(self, "'", `'\''`)+"' "+roleRuntime,
		"WARM_IDLE_TIMEOUT_MS=0",
		"KILL_GRACE_MS=100",
		"CALLBACK_BACKOFF_MS=20",
		"LOG_LEVEL="+level,
		"SOAK_STATS="+filepath.Join(dir, "stats"),
	)
	s.cmd.Stdout, s.cmd.Stderr = stderr, stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.cleanup()
		return nil, err
	}
	go func() { s.exitErr = s.cmd.Wait(); close(s.exited) }()
	s.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2, Proxy: nil}}
	return s, nil
}

func (s *soak) cleanup() {
	if s.cmd != nil && s.cmd.Process != nil {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if s.recv != nil {
		s.recv.Close()
	}
	os.RemoveAll(s.dir)
}

func (s *soak) crashed() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

func (s *soak) run() int {
	if err := s.waitReady(); err != nil {
		fmt.Fprintln(s.errOut, "soak:", err)
		return 1
	}
	pid := s.cmd.Process.Pid
	fmt.Fprintf(s.out, "soak: %d calls against watchdog pid %d (EXECUTION_MODE=WARM, loopback), %d CPUs\n", s.o.calls, pid, runtime.NumCPU())
	fmt.Fprintf(s.out, "%9s %8s %9s %9s %5s %8s %11s %10s %11s\n", "calls", "secs", "calls/s", "rss_kib", "fds", "threads", "goroutines", "heap_kib", "heap_objs")

	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(interrupted)

	every := max(s.o.calls/s.o.samples, 1)
	began := time.Now()
	var first, last sample
	done := 0
	for i := 0; i < s.o.calls; i++ {
		select {
		case <-interrupted:
			fmt.Fprintln(s.out, "soak: interrupted")
			i = s.o.calls
			continue
		default:
		}
		if s.crashed() {
			break
		}
		s.call(i)
		done = i + 1
		if done%every == 0 || done == s.o.calls {
			smp := s.sample(pid)
			if first.calls == 0 {
				first = smp
			}
			last = smp
			secs := time.Since(began).Seconds()
			fmt.Fprintf(s.out, "%9d %8.1f %9.0f %9d %5d %8d %11d %10d %11d\n", done, secs, float64(done)/secs,
				smp.rssKiB, smp.fds, smp.threads, smp.goroutines, smp.heapKiB, smp.heapObjects)
		}
	}
	if s.crashed() {
		fmt.Fprintf(s.errOut, "soak: FAIL: the watchdog exited during the run (%v) after %d calls\n", s.exitErr, done)
		return 1
	}
	s.checkCallbacks()
	status := s.stop()

	fmt.Fprintf(s.out, "\nmix: %s\n", s.mix())
	fmt.Fprintf(s.out, "growth from the first sample (%d calls) to the last (%d calls): rss %+d KiB, fds %+d, threads %+d, goroutines %+d, heap %+d KiB\n",
		first.calls, last.calls, last.rssKiB-first.rssKiB, last.fds-first.fds, last.threads-first.threads,
		last.goroutines-first.goroutines, last.heapKiB-first.heapKiB)
	if s.wrong > 0 {
		fmt.Fprintf(s.errOut, "soak: FAIL: %d wrong answers\n", s.wrong)
		return 1
	}
	if status != 0 {
		return status
	}
	fmt.Fprintf(s.out, "soak: %d calls, no wrong answer, the watchdog stopped cleanly\n", done)
	return 0
}

func (s *soak) waitReady() error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s.crashed() {
			return fmt.Errorf("the watchdog exited before it was ready: %v", s.exitErr)
		}
		resp, err := s.client.Get(s.base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("the watchdog was not ready within 20s")
}

// call makes invocation i, of the kind its number says, and checks the answer.
func (s *soak) call(i int) {
	id := "soak-" + strconv.Itoa(i)
	var (
		kind    string
		body    string
		header  bool
		want    int
		wantSub string
	)
	switch {
	case i%1000 == 999:
		kind, want, wantSub = "timeout", 504, `"code":"TIMEOUT"`
		body = fmt.Sprintf(`{"execution_id":%q,"payload":{"op":"sleep","ms":400,"n":%d},"timeout_ms":40}`, id, i)
	case i%10 == 3:
		kind, want, wantSub = "function_error", 500, `"code":"FUNCTION_ERROR","message":"runtime answered HTTP 500`
		body = fmt.Sprintf(`{"execution_id":%q,"payload":{"op":"fail","n":%d}}`, id, i)
	case i%50 == 7:
		kind, want, wantSub = "bad_request", 400, `"code":"BAD_REQUEST"`
		body = fmt.Sprintf(`{"execution_id":%q,"payload":`, id)
	case i%20 == 11:
		kind, want, header, wantSub = "header_form", 200, true, fmt.Sprintf(`{"n":%d,"pid":`, i)
		body = fmt.Sprintf(`{"op":"ok","n":%d}`, i)
	case i%20 == 15:
		kind, want = "callback", 200
		wantSub = fmt.Sprintf(`"execution_id":%q,"success":true,"output":{"n":%d,"pid":`, id, i)
		body = fmt.Sprintf(`{"execution_id":%q,"callback_url":%q,"payload":{"op":"ok","n":%d}}`, id, s.recv.Base, i)
		s.callbackWanted[id] = s.recv.Expect(id, nil)
	default:
		kind, want = "success", 200
		wantSub = fmt.Sprintf(`"execution_id":%q,"success":true,"output":{"n":%d,"pid":`, id, i)
		body = fmt.Sprintf(`{"execution_id":%q,"payload":{"op":"ok","n":%d}}`, id, i)
	}
	s.counts[kind]++
	req, _ := http.NewRequest(http.MethodPost, s.base+"/invoke", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if header {
		req.Header.Set("X-Execution-Id", id)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.wrongAnswer(i, kind, fmt.Sprintf("transport error: %v", err))
		return
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want || !bytes.Contains(got, []byte(wantSub)) {
		s.wrongAnswer(i, kind, fmt.Sprintf("%d %.300s (want %d with %s)", resp.StatusCode, got, want, wantSub))
	}
}

func (s *soak) wrongAnswer(i int, kind, what string) {
	s.wrong++
	if s.wrongShown < 10 {
		s.wrongShown++
		fmt.Fprintf(s.errOut, "soak: wrong answer to call %d (%s): %s\n", i, kind, what)
	}
}

// checkCallbacks waits until every result sent with a callback_url arrived.
func (s *soak) checkCallbacks() {
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	missing := 0
	for _, arrived := range s.callbackWanted {
		select {
		case <-arrived:
			continue
		default:
		}
		if missing > 0 {
			missing++ // the deadline has passed: only count the rest
			continue
		}
		select {
		case <-arrived:
		case <-deadline.C:
			missing++
		}
	}
	if missing > 0 {
		s.wrong += missing
		fmt.Fprintf(s.errOut, "soak: %d of %d callbacks never arrived\n", missing, len(s.callbackWanted))
	}
}

// stop sends SIGTERM and expects a clean exit 0 within 10s.
func (s *soak) stop() int {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(s.errOut, "soak: FAIL: the watchdog did not stop within 10s of SIGTERM")
		return 1
	}
	if s.exitErr != nil {
		fmt.Fprintf(s.errOut, "soak: FAIL: the watchdog exited with %v after SIGTERM\n", s.exitErr)
		return 1
	}
	return 0
}

func (s *soak) mix() string {
	var parts []string
	for _, k := range []string{"success", "header_form", "callback", "function_error", "bad_request", "timeout"} {
		parts = append(parts, fmt.Sprintf("%s %d", k, s.counts[k]))
	}
	return strings.Join(parts, ", ") + fmt.Sprintf("; callbacks received %d", s.recv.Count())
}

type sample struct {
	calls                            int
	rssKiB, fds, threads, goroutines int
	heapKiB, heapObjects             int
}

func (s *soak) sample(pid int) sample {
	smp := sample{calls: s.counts["success"] + s.counts["header_form"] + s.counts["callback"] +
		s.counts["function_error"] + s.counts["bad_request"] + s.counts["timeout"]}
	if m, err := proctree.ReadMemory(pid); err == nil {
		smp.rssKiB = int(m.RSS)
	}
	if u, err := proctree.ReadUsage(pid); err == nil {
		smp.threads, smp.fds = u.Threads, u.FDs
	}
	if stats, err := os.ReadFile(filepath.Join(s.dir, "stats")); err == nil {
		var heap int
		fmt.Sscan(string(stats), &smp.goroutines, &heap, &smp.heapObjects)
		smp.heapKiB = heap / 1024
	}
	return smp
}
