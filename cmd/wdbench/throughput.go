package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// throughputLevels are the client concurrencies of measurement 7.
var throughputLevels = []int{1, 4, 16}

// ThroughputReport is measurement 7: requests per second with N clients
// calling at once, each waiting for its answer before the next call,
// through the watchdog (EXECUTION_MODE=WARM, WARM_CONCURRENCY=16, header
// form) and to the same kind of runtime directly. The runtime (gohttp)
// handles parallel requests.
type ThroughputReport struct {
	// Seconds each point ran for, per target.
	Seconds float64           `json:"seconds_per_point"`
	Points  []ThroughputPoint `json:"points"`
}

// ThroughputPoint is one concurrency level.
type ThroughputPoint struct {
	Concurrency int     `json:"concurrency"`
	DirectRPS   float64 `json:"direct_rps"`
	WatchdogRPS float64 `json:"watchdog_rps"`
	// Ratio is WatchdogRPS / DirectRPS.
	Ratio float64 `json:"ratio"`
}

// benchThroughput measures requests per second at each level, the direct
// runtime and the watchdog taking turns, each for d.
func benchThroughput(ctx context.Context, bins binaries, d time.Duration) (ThroughputReport, error) {
	r := ThroughputReport{Seconds: d.Seconds()}
	ports, err := freePorts(3)
	if err != nil {
		return r, err
	}
	pDirect, pRuntime, pWatchdog := ports[0], ports[1], ports[2]
	direct, err := startProc("gohttp (direct, throughput)", bins.gohttp, []string{"PORT=" + strconv.Itoa(pDirect)})
	if err != nil {
		return r, err
	}
	defer direct.stop(2 * time.Second)
	maxLevel := throughputLevels[len(throughputLevels)-1]
	wd, err := startProc("watchdog (WARM_CONCURRENCY, throughput)", bins.watchdog, append([]string{
		"EXECUTION_MODE=WARM", "WARM=", "WATCHDOG_CMD=" + bins.gohttp,
		"RUNTIME_URL=" + local(pRuntime, "/invoke"), "HEALTH_URL=", "WARM_PORT=" + strconv.Itoa(pWatchdog),
		"WARM_CONCURRENCY=" + strconv.Itoa(maxLevel),
	}, append(commonEnv, "LOG_LEVEL=warn")...))
	if err != nil {
		return r, err
	}
	defer wd.stop(5 * time.Second)
	c := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: maxLevel, DisableCompression: true, IdleConnTimeout: time.Minute}}
	defer c.CloseIdleConnections()
	if _, err := waitReady(ctx, c, local(pDirect, "/health"), direct, 5*time.Millisecond, 15*time.Second); err != nil {
		return r, err
	}
	if _, err := waitReady(ctx, c, local(pWatchdog, "/health"), wd, 5*time.Millisecond, 15*time.Second); err != nil {
		return r, err
	}
	directTarget := func() *target {
		return &target{name: "runtime direct", url: local(pDirect, "/invoke"),
			header: http.Header{"Content-Type": {"application/json"}}, body: payload, want: payload}
	}
	watchdogTarget := func() *target { return headerForm(pWatchdog) }
	for _, n := range throughputLevels {
		p := ThroughputPoint{Concurrency: n}
		// A short warm-up of each opens the connections.
		for _, mk := range []func() *target{directTarget, watchdogTarget} {
			if _, err := rate(ctx, c, mk, n, d/10); err != nil {
				return r, err
			}
		}
		if p.DirectRPS, err = rate(ctx, c, directTarget, n, d); err != nil {
			return r, err
		}
		if p.WatchdogRPS, err = rate(ctx, c, watchdogTarget, n, d); err != nil {
			return r, err
		}
		if p.DirectRPS > 0 {
			p.Ratio = round3(p.WatchdogRPS / p.DirectRPS)
		}
		r.Points = append(r.Points, p)
	}
	return r, nil
}

// rate runs n clients calling targets made by mk back to back for d and
// returns the answered calls per second; any failed call is an error.
func rate(ctx context.Context, c *http.Client, mk func() *target, n int, d time.Duration) (float64, error) {
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	stop := time.Now().Add(d)
	began := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := mk()
			for time.Now().Before(stop) && ctx.Err() == nil {
				if _, err := t.call(c); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return round3(float64(done.Load()) / time.Since(began).Seconds()), nil
}

// printThroughput writes measurement 7's rows.
func printThroughput(w interface{ Write([]byte) (int, error) }, r ThroughputReport) {
	fmt.Fprintf(w, "\n%-50s %12s %12s %8s\n", "7. throughput (requests/s, gohttp runtime)", "direct", "watchdog", "ratio")
	for _, p := range r.Points {
		fmt.Fprintf(w, "%-50s %12.0f %12.0f %8.2f\n", fmt.Sprintf("   %d client(s) at once (WARM_CONCURRENCY=16)", p.Concurrency), p.DirectRPS, p.WatchdogRPS, p.Ratio)
	}
}
