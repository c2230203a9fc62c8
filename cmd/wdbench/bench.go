package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"time"

	"nanofaas.dev/devkit/freeport"
	"nanofaas.dev/devkit/receiver"
	"nanofaas.dev/watchdog/proctree"
)

// payload is what every invocation sends; the fixtures echo it.
var payload = []byte(`{"input":"hello, watchdog"}`)

// settings are the counts of one run.
type settings struct {
	short bool
	// warmCalls per series, after warmup calls per series.
	warmCalls, warmup int
	// memCalls is how many calls the warm watchdog has served when its
	// RSS is read the second time.
	memCalls int
	// idleWait is how long the watchdog sits idle before its RSS is read.
	idleWait                time.Duration
	stdioCalls, stdioWarmup int
	oneshotRuns, startRuns  int
	// throughputFor is how long each throughput point runs, per target.
	throughputFor time.Duration
	// linesSpawnCalls is how many calls each script example gets when it
	// is spawned per invocation (measurement 8; its warm calls are
	// warmCalls).
	linesSpawnCalls int
}

var (
	fullSettings = settings{
		warmCalls: 5000, warmup: 500, memCalls: 10000, idleWait: time.Second,
		stdioCalls: 2000, stdioWarmup: 100, oneshotRuns: 200, startRuns: 100,
		throughputFor:   2 * time.Second,
		linesSpawnCalls: 300,
	}
	shortSettings = settings{
		short:     true,
		warmCalls: 300, warmup: 50, memCalls: 1000, idleWait: 200 * time.Millisecond,
		stdioCalls: 60, stdioWarmup: 10, oneshotRuns: 10, startRuns: 6,
		throughputFor:   300 * time.Millisecond,
		linesSpawnCalls: 20,
	}
)

// commonEnv pins the watchdog's settings that the benchmark's own
// environment could otherwise change; everything else is the default.
var commonEnv = []string{"LOG_LEVEL=info", "LOG_FORMAT=json", "FUNCTION_NAME=bench", "WATCHDOG_SUBREAPER=false", "WARM_AUTH_TOKEN="}

// WarmReport is measurement 1: the warm overhead.
type WarmReport struct {
	// Direct is the runtime called directly. Relay is the runtime behind a
	// TCP relay (bytes copied both ways, no HTTP): the least an extra
	// process on the path costs. Hop is the runtime behind a trivial Go
	// reverse hop (net/http server and client, as in the watchdog): the
	// floor of one extra loopback HTTP hop. Header and Envelope are the
	// runtime behind the watchdog (EXECUTION_MODE=WARM), with the two
	// request forms. The relay and the hop run with GOMAXPROCS=1, as the
	// watchdog does.
	Direct   Summary `json:"direct"`
	Relay    Summary `json:"tcp_relay"`
	Hop      Summary `json:"http_hop"`
	Header   Summary `json:"watchdog_header_form"`
	Envelope Summary `json:"watchdog_envelope_form"`
}

func local(port int, path string) string { return "http://127.0.0.1:" + strconv.Itoa(port) + path }

// startWarm starts a server-mode watchdog with the gohttp runtime and
// waits until it is ready.
func startWarm(ctx context.Context, bins binaries, c *http.Client) (wd *proc, port int, err error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, 0, err
	}
	wd, err = startProc("watchdog (EXECUTION_MODE=WARM)", bins.watchdog, append([]string{
		"EXECUTION_MODE=WARM", "WARM=", "WATCHDOG_CMD=" + bins.gohttp,
		"RUNTIME_URL=" + local(ports[0], "/invoke"), "HEALTH_URL=", "WARM_PORT=" + strconv.Itoa(ports[1]),
	}, commonEnv...))
	if err != nil {
		return nil, 0, err
	}
	if _, err := waitReady(ctx, c, local(ports[1], "/health"), wd, 5*time.Millisecond, 15*time.Second); err != nil {
		wd.stop(5 * time.Second)
		return nil, 0, err
	}
	return wd, ports[1], nil
}

// headerForm is a header-form invocation of the watchdog on port.
func headerForm(port int) *target {
	return &target{name: "watchdog header form", url: local(port, "/invoke"),
		header: http.Header{"Content-Type": {"application/json"}, "X-Execution-Id": {"bench-1"}},
		body:   payload, want: payload}
}

// benchWarm runs the direct runtime, the relay, the hop and the watchdog
// side by side and calls them interleaved, one client, one call at a time.
func benchWarm(ctx context.Context, bins binaries, s settings) (WarmReport, error) {
	var r WarmReport
	ports, err := freePorts(3)
	if err != nil {
		return r, err
	}
	pDirect, pRelay, pHop := ports[0], ports[1], ports[2]
	direct, err := startProc("gohttp (direct)", bins.gohttp, []string{"PORT=" + strconv.Itoa(pDirect)})
	if err != nil {
		return r, err
	}
	defer direct.stop(2 * time.Second)
	relay, err := startProc("gohttp (TCP relay)", bins.gohttp, []string{"PORT=" + strconv.Itoa(pRelay), "RELAY_TO=127.0.0.1:" + strconv.Itoa(pDirect), "GOMAXPROCS=1"})
	if err != nil {
		return r, err
	}
	defer relay.stop(2 * time.Second)
	hop, err := startProc("gohttp (HTTP hop)", bins.gohttp, []string{"PORT=" + strconv.Itoa(pHop), "HOP_TO=" + local(pDirect, ""), "GOMAXPROCS=1"})
	if err != nil {
		return r, err
	}
	defer hop.stop(2 * time.Second)
	c := newClient()
	defer c.CloseIdleConnections()
	for _, w := range []struct {
		p    *proc
		port int
	}{{direct, pDirect}, {relay, pRelay}, {hop, pHop}} {
		if _, err := waitReady(ctx, c, local(w.port, "/health"), w.p, 5*time.Millisecond, 15*time.Second); err != nil {
			return r, err
		}
	}
	wd, pWatchdog, err := startWarm(ctx, bins, c)
	if err != nil {
		return r, err
	}
	defer wd.stop(5 * time.Second)

	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	targets := []*target{
		{name: "direct", url: local(pDirect, "/invoke"), header: jsonHdr, body: payload, want: payload},
		{name: "TCP relay", url: local(pRelay, "/invoke"), header: jsonHdr, body: payload, want: payload},
		{name: "HTTP hop", url: local(pHop, "/invoke"), header: jsonHdr, body: payload, want: payload},
		headerForm(pWatchdog),
		{name: "watchdog envelope form", url: local(pWatchdog, "/invoke"), header: jsonHdr,
			body:       []byte(`{"execution_id":"bench-2","payload":` + string(payload) + `}`),
			wantPrefix: []byte(`{"execution_id":"bench-2","success":true,"output":` + string(payload))},
	}
	series, err := interleave(ctx, c, targets, s.warmup, s.warmCalls)
	if err != nil {
		return r, fmt.Errorf("%w (%s)", err, wd.describe())
	}
	r.Direct, r.Relay, r.Hop = summarize(series[0]), summarize(series[1]), summarize(series[2])
	r.Header, r.Envelope = summarize(series[3]), summarize(series[4])
	return r, nil
}

// MemoryReport is measurement 5, in kB from /proc/PID/status. VmRSS is
// RssAnon (the process's own memory: heap, stacks, runtime metadata) plus
// RssFile (pages of the binary mapped from the page cache, shared by every
// process that runs it and dropped first under memory pressure).
type MemoryReport struct {
	IdleRSSKB     int64 `json:"idle_rss_kb"`
	IdleRssAnonKB int64 `json:"idle_rss_anon_kb"`
	IdleRssFileKB int64 `json:"idle_rss_file_kb"`
	// Mid is after half the calls, End after all of them.
	MidRSSKB     int64 `json:"mid_rss_kb"`
	EndRSSKB     int64 `json:"end_rss_kb"`
	EndRssAnonKB int64 `json:"end_rss_anon_kb"`
	PeakRSSKB    int64 `json:"peak_rss_kb"`
	Calls        int   `json:"calls"`
	// RuntimeIdleRSSKB is the gohttp runtime's own idle VmRSS, for scale.
	RuntimeIdleRSSKB int64 `json:"runtime_idle_rss_kb"`
}

// benchMemory reads the RSS of a fresh WARM watchdog idle, then after half
// and all of s.memCalls header-form calls.
func benchMemory(ctx context.Context, bins binaries, s settings) (MemoryReport, error) {
	r := MemoryReport{Calls: s.memCalls}
	c := newClient()
	defer c.CloseIdleConnections()
	wd, port, err := startWarm(ctx, bins, c)
	if err != nil {
		return r, err
	}
	defer wd.stop(5 * time.Second)
	time.Sleep(s.idleWait)
	idle, err := proctree.ReadMemory(wd.pid)
	if err != nil {
		return r, err
	}
	r.IdleRSSKB, r.IdleRssAnonKB, r.IdleRssFileKB = idle.RSS, idle.Anon, idle.File
	if kids := proctree.Children(wd.pid); len(kids) > 0 {
		if rt, err := proctree.ReadMemory(kids[0]); err == nil {
			r.RuntimeIdleRSSKB = rt.RSS
		}
	}
	t := headerForm(port)
	for i := 1; i <= s.memCalls; i++ {
		if i%256 == 0 && ctx.Err() != nil {
			return r, ctx.Err()
		}
		if _, err := t.call(c); err != nil {
			return r, fmt.Errorf("%w (%s)", err, wd.describe())
		}
		if i == s.memCalls/2 {
			mid, err := proctree.ReadMemory(wd.pid)
			if err != nil {
				return r, err
			}
			r.MidRSSKB = mid.RSS
		}
	}
	end, err := proctree.ReadMemory(wd.pid)
	if err != nil {
		return r, err
	}
	r.EndRSSKB, r.EndRssAnonKB, r.PeakRSSKB = end.RSS, end.Anon, end.Peak
	return r, nil
}

// interleave calls every target warmup times, then n times each, rotating
// the order every round so that no target always goes first.
func interleave(ctx context.Context, c *http.Client, targets []*target, warmup, n int) ([][]time.Duration, error) {
	for range warmup {
		for _, t := range targets {
			if _, err := t.call(c); err != nil {
				return nil, err
			}
		}
	}
	series := make([][]time.Duration, len(targets))
	for i := range series {
		series[i] = make([]time.Duration, 0, n)
	}
	for i := range n {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for k := range targets {
			j := (i + k) % len(targets)
			d, err := targets[j].call(c)
			if err != nil {
				return nil, err
			}
			series[j] = append(series[j], d)
		}
	}
	return series, nil
}

// STDIOReport is measurement 2: a process per invocation.
type STDIOReport struct {
	// Direct spawns the cat-like handler (fixtures/gocat, a Go program)
	// from Go (os/exec: payload on stdin, stdout read, exit waited for);
	// Watchdog runs it through WARM=true EXECUTION_MODE=STDIO.
	Direct   Summary `json:"direct_spawn"`
	Watchdog Summary `json:"watchdog"`
	// CatDirect and CatWatchdog are the same with /bin/cat, a C program
	// that starts faster than any Go program (absent without /bin/cat).
	CatDirect   *Summary `json:"bin_cat_direct_spawn,omitempty"`
	CatWatchdog *Summary `json:"bin_cat_watchdog,omitempty"`
}

// stdioHandler is one handler measured direct and through a watchdog.
type stdioHandler struct {
	path    string
	through *target
	ds, ws  []time.Duration
}

func benchSTDIO(ctx context.Context, bins binaries, s settings) (STDIOReport, error) {
	var r STDIOReport
	c := newClient()
	defer c.CloseIdleConnections()
	paths := []string{bins.gocat}
	if fileExists("/bin/cat") {
		paths = append(paths, "/bin/cat")
	}
	var handlers []*stdioHandler
	for _, path := range paths {
		port, err := freeport.Pick()
		if err != nil {
			return r, err
		}
		wd, err := startProc("watchdog (WARM=true EXECUTION_MODE=STDIO "+path+")", bins.watchdog, append([]string{
			"WARM=true", "EXECUTION_MODE=STDIO", "WATCHDOG_CMD=" + path, "WARM_PORT=" + strconv.Itoa(port),
		}, commonEnv...))
		if err != nil {
			return r, err
		}
		defer wd.stop(5 * time.Second)
		if _, err := waitReady(ctx, c, local(port, "/health"), wd, 5*time.Millisecond, 15*time.Second); err != nil {
			return r, err
		}
		handlers = append(handlers, &stdioHandler{path: path, through: &target{name: "watchdog STDIO " + path, url: local(port, "/invoke"),
			header: http.Header{"Content-Type": {"application/json"}, "X-Execution-Id": {"bench-stdio"}},
			body:   payload, want: payload}})
	}
	for i := range s.stdioWarmup + s.stdioCalls {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		for _, h := range handlers {
			d, w, err := pair(i, func() (time.Duration, error) { return spawnDirect(h.path) }, func() (time.Duration, error) { return h.through.call(c) })
			if err != nil {
				return r, err
			}
			if i >= s.stdioWarmup {
				h.ds, h.ws = append(h.ds, d), append(h.ws, w)
			}
		}
	}
	r.Direct, r.Watchdog = summarize(handlers[0].ds), summarize(handlers[0].ws)
	if len(handlers) > 1 {
		cd, cw := summarize(handlers[1].ds), summarize(handlers[1].ws)
		r.CatDirect, r.CatWatchdog = &cd, &cw
	}
	return r, nil
}

// pair runs a and b, a first when i is even, and returns their times.
func pair(i int, a, b func() (time.Duration, error)) (time.Duration, time.Duration, error) {
	first, second := a, b
	if i%2 == 1 {
		first, second = b, a
	}
	d1, err := first()
	if err != nil {
		return 0, 0, err
	}
	d2, err := second()
	if err != nil {
		return 0, 0, err
	}
	if i%2 == 1 {
		d1, d2 = d2, d1
	}
	return d1, d2, nil
}

// spawnDirect runs the handler from Go with the payload on stdin and
// returns the wall time until its output is read and it has exited.
func spawnDirect(path string) (time.Duration, error) {
	start := time.Now()
	cmd := exec.Command(path)
	cmd.Stdin = bytes.NewReader(payload)
	out, err := cmd.Output()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if !bytes.Equal(out, payload) {
		return 0, fmt.Errorf("%s printed %s, want %s", path, excerpt(out), payload)
	}
	return took, nil
}

// pairs runs a and b alternately (a first on even rounds, b first on odd
// ones), warmup times unrecorded, then n times recorded.
func pairs(ctx context.Context, warmup, n int, a, b func() (time.Duration, error)) ([]time.Duration, []time.Duration, error) {
	as, bs := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	for i := range warmup + n {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		d1, d2, err := pair(i, a, b)
		if err != nil {
			return nil, nil, err
		}
		if i >= warmup {
			as, bs = append(as, d1), append(bs, d2)
		}
	}
	return as, bs, nil
}

// OneShotReport is measurement 3.
type OneShotReport struct {
	// Direct runs the handler from Go; Watchdog is the wall time from
	// starting the one-shot watchdog (EXECUTION_MODE=STDIO) to its callback
	// arriving at a receiver in this process.
	Direct   Summary `json:"direct_run"`
	Watchdog Summary `json:"watchdog_to_callback"`
}

func benchOneShot(ctx context.Context, bins binaries, s settings) (OneShotReport, error) {
	var r OneShotReport
	recv, err := receiver.Start(receiver.Behaviour{OKStatus: http.StatusNoContent, CountOnly: true})
	if err != nil {
		return r, err
	}
	defer recv.Close()
	callbackURL := recv.Base

	run := 0
	oneShot := func() (time.Duration, error) {
		run++
		id := "bench-oneshot-" + strconv.Itoa(run)
		arrived := recv.Expect(id, nil)
		defer recv.Forget(id)
		start := time.Now()
		wd, err := startProc("watchdog (one-shot STDIO)", bins.watchdog, append([]string{
			"EXECUTION_MODE=STDIO", "WARM=", "WATCHDOG_CMD=" + bins.gocat, "EXECUTION_ID=" + id,
			"CALLBACK_URL=" + callbackURL, "INVOCATION_PAYLOAD=" + string(payload), "TRACE_ID=",
		}, commonEnv...))
		if err != nil {
			return 0, err
		}
		defer wd.stop(5 * time.Second)
		timeout := time.NewTimer(15 * time.Second)
		defer timeout.Stop()
		select {
		case a := <-arrived:
			if !bytes.HasPrefix(a.Body, []byte(`{"success":true,"output":`+string(payload))) {
				return 0, fmt.Errorf("callback for %q: %s, want a success with the payload", id, excerpt(a.Body))
			}
			select {
			case <-wd.done:
			case <-timeout.C:
				return 0, fmt.Errorf("the one-shot watchdog did not exit after its callback: %s", wd.describe())
			}
			var exitErr *exec.ExitError
			if errors.As(wd.exit, &exitErr) {
				return 0, fmt.Errorf("one-shot watchdog: %s", wd.describe())
			}
			return a.At.Sub(start), nil
		case <-timeout.C:
			return 0, fmt.Errorf("no callback within 15s: %s", wd.describe())
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	direct := func() (time.Duration, error) { return spawnDirect(bins.gocat) }
	ds, ws, err := pairs(ctx, 2, s.oneshotRuns, direct, oneShot)
	if err != nil {
		return r, err
	}
	r.Direct, r.Watchdog = summarize(ds), summarize(ws)
	return r, nil
}

// StartupReport is measurement 4.
type StartupReport struct {
	// Runtime is exec of the runtime alone until its /health answers 200;
	// Watchdog is exec of the watchdog (EXECUTION_MODE=WARM, the same
	// runtime) until the watchdog's /health answers 200.
	Runtime  Summary `json:"runtime_alone"`
	Watchdog Summary `json:"watchdog"`
	// PollMicros is how often /health is polled.
	PollMicros int `json:"poll_interval_us"`
}

const startPoll = 200 * time.Microsecond

func benchStartup(ctx context.Context, bins binaries, s settings) (StartupReport, error) {
	r := StartupReport{PollMicros: int(startPoll / time.Microsecond)}
	measure := func(name, path string, env []string, health string) (time.Duration, error) {
		c := newClient()
		defer c.CloseIdleConnections()
		start := time.Now()
		p, err := startProc(name, path, env)
		if err != nil {
			return 0, err
		}
		defer p.stop(5 * time.Second)
		ready, err := waitReady(ctx, c, health, p, startPoll, 15*time.Second)
		if err != nil {
			return 0, err
		}
		return ready.Sub(start), nil
	}
	runtime := func() (time.Duration, error) {
		port, err := freeport.Pick()
		if err != nil {
			return 0, err
		}
		return measure("gohttp (alone)", bins.gohttp, []string{"PORT=" + strconv.Itoa(port)},
			"http://127.0.0.1:"+strconv.Itoa(port)+"/health")
	}
	watchdog := func() (time.Duration, error) {
		ports, err := freePorts(2)
		if err != nil {
			return 0, err
		}
		return measure("watchdog (EXECUTION_MODE=WARM)", bins.watchdog, append([]string{
			"EXECUTION_MODE=WARM", "WARM=", "WATCHDOG_CMD=" + bins.gohttp, "HEALTH_URL=",
			"RUNTIME_URL=http://127.0.0.1:" + strconv.Itoa(ports[0]) + "/invoke", "WARM_PORT=" + strconv.Itoa(ports[1]),
		}, commonEnv...), "http://127.0.0.1:"+strconv.Itoa(ports[1])+"/health")
	}
	rs, ws, err := pairs(ctx, 2, s.startRuns, runtime, watchdog)
	if err != nil {
		return r, err
	}
	r.Runtime, r.Watchdog = summarize(rs), summarize(ws)
	return r, nil
}
