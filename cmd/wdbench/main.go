// Command wdbench measures what the watchdog costs compared with running
// the function without it, on the machine it runs on:
//
//  1. warm overhead: a minimal Go HTTP runtime called directly vs through
//     the watchdog (EXECUTION_MODE=WARM), interleaved, one client; a
//     trivial Go reverse hop in front of the same runtime is the floor;
//  2. per-invocation STDIO (WARM=true EXECUTION_MODE=STDIO) with a cat-like
//     compiled handler vs spawning the handler directly from Go;
//  3. one-shot: starting the watchdog until its callback arrives vs running
//     the handler directly;
//  4. start to serving: exec of the watchdog until /health answers 200,
//     minus the runtime's own readiness time;
//  5. the watchdog's RSS idle in server mode and after 10,000 calls;
//  6. the size of the watchdog binary built as the Dockerfile builds it;
//  7. throughput: requests per second with 1, 4 and 16 clients at once,
//     through the watchdog (WARM_CONCURRENCY=16) vs the runtime direct.
//  8. script functions (the python-stdio and node-stdio examples, for each
//     interpreter on PATH) spawned per invocation vs kept warm with
//     STDIO_PROTOCOL=lines (their -warm examples), side by side with the
//     warm HTTP runtime of 1.
//
// Every latency is compared with a baseline measured in the same run, as
// absolute times on a shared machine are noise. It builds the watchdog and
// the fixtures (fixtures/gohttp, fixtures/gocat) into a temp dir, runs them
// as separate processes, stops each process it started and removes the
// temp dir. It prints a table and, with --json FILE, writes the figures as
// JSON. Targets are reported, met or missed, never asserted: it exits 0
// whatever the figures, and non-zero only when it could not measure.
//
//	go run ./cmd/wdbench [--short] [--json FILE]
//
// --short runs everything with small counts in a few seconds, for CI.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wdbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	short := fs.Bool("short", false, "small counts: runs in seconds, for CI (the figures are rough)")
	jsonPath := fs.String("json", "", "also write the figures to this `file` as JSON")
	keep := fs.Bool("keep", false, "keep the temp dir with the built binaries (it is printed)")
	watchdogBin := fs.String("watchdog", "", "measure this watchdog `binary` instead of building watchdog/cmd/watchdog (to compare two builds)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./cmd/wdbench [--short] [--json FILE] [--keep] [--watchdog BINARY]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wdbench: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	s := fullSettings
	if *short {
		s = shortSettings
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := measure(ctx, s, *keep, *watchdogBin, stderr)
	stopAll()
	if err != nil {
		fmt.Fprintf(stderr, "wdbench: %v\n", err)
		return 1
	}
	printTable(stdout, rep)
	if *jsonPath != "" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonPath, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "wdbench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "wdbench: wrote %s\n", *jsonPath)
	}
	return 0
}

// Report is everything one run measured; it is the JSON output.
type Report struct {
	Date    string        `json:"date"`
	Short   bool          `json:"short"`
	Machine Machine       `json:"machine"`
	Build   string        `json:"build_command"`
	Warm    WarmReport    `json:"warm"`
	Memory  MemoryReport  `json:"memory"`
	STDIO   STDIOReport   `json:"stdio_per_invocation"`
	OneShot OneShotReport `json:"one_shot"`
	Startup StartupReport `json:"start_to_serving"`
	Binary  int64         `json:"binary_bytes"`
	// Throughput is measurement 7.
	Throughput ThroughputReport `json:"throughput"`
	// Lines is measurement 8.
	Lines    LinesReport `json:"stdio_lines"`
	Targets  []Target    `json:"targets"`
	Duration float64     `json:"run_seconds"`
}

// Machine describes where the figures come from.
type Machine struct {
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
}

// Target is one of issue #7's targets, with what this run measured.
type Target struct {
	Name     string  `json:"name"`
	Measured float64 `json:"measured"`
	Limit    float64 `json:"limit"`
	Unit     string  `json:"unit"`
	Met      bool    `json:"met"`
	How      string  `json:"how"`
	// AtLeast: the target is a floor (measured >= limit), not a ceiling.
	AtLeast bool `json:"at_least,omitempty"`
}

func measure(ctx context.Context, s settings, keep bool, watchdogBin string, log io.Writer) (*Report, error) {
	began := time.Now()
	rep := &Report{Date: began.UTC().Format("2006-01-02"), Short: s.short, Machine: machine()}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wdbench-")
	if err != nil {
		return nil, err
	}
	if keep {
		fmt.Fprintf(log, "wdbench: binaries in %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	step := func(what string) { fmt.Fprintf(log, "wdbench: %s (%.1fs)\n", what, time.Since(began).Seconds()) }

	step("building the watchdog and the fixtures")
	bins, err := build(root, dir, !s.short)
	rep.Build = bins.command
	if err != nil {
		return nil, err
	}
	if watchdogBin != "" {
		if bins.watchdog, err = filepath.Abs(watchdogBin); err != nil {
			return nil, err
		}
		rep.Build = "(given with --watchdog) " + bins.watchdog
	}
	info, err := os.Stat(bins.watchdog)
	if err != nil {
		return nil, err
	}
	rep.Binary = info.Size()

	step(fmt.Sprintf("1. warm: direct, relay, hop and watchdog, %d calls each, interleaved", s.warmCalls))
	if rep.Warm, err = benchWarm(ctx, bins, s); err != nil {
		return nil, fmt.Errorf("warm: %w", err)
	}
	step(fmt.Sprintf("5. memory: RSS idle and after %d calls", s.memCalls))
	if rep.Memory, err = benchMemory(ctx, bins, s); err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	step(fmt.Sprintf("2. STDIO per invocation: %d calls each, interleaved", s.stdioCalls))
	if rep.STDIO, err = benchSTDIO(ctx, bins, s); err != nil {
		return nil, fmt.Errorf("STDIO: %w", err)
	}
	step(fmt.Sprintf("3. one-shot: %d runs each", s.oneshotRuns))
	if rep.OneShot, err = benchOneShot(ctx, bins, s); err != nil {
		return nil, fmt.Errorf("one-shot: %w", err)
	}
	step(fmt.Sprintf("4. start to serving: %d starts each", s.startRuns))
	if rep.Startup, err = benchStartup(ctx, bins, s); err != nil {
		return nil, fmt.Errorf("start to serving: %w", err)
	}
	step(fmt.Sprintf("7. throughput: %v clients at once, %.1fs each, direct and through the watchdog", throughputLevels, s.throughputFor.Seconds()))
	if rep.Throughput, err = benchThroughput(ctx, bins, s.throughputFor); err != nil {
		return nil, fmt.Errorf("throughput: %w", err)
	}
	step(fmt.Sprintf("8. scripts: spawned per invocation (%d calls) vs STDIO_PROTOCOL=lines (%d calls)", s.linesSpawnCalls, s.warmCalls))
	if rep.Lines, err = benchLines(ctx, root, bins, s); err != nil {
		return nil, fmt.Errorf("STDIO lines: %w", err)
	}
	rep.Targets = targets(rep)
	rep.Duration = round3(time.Since(began).Seconds())
	step("done")
	return rep, nil
}

func machine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

const mb = 1e6

// targets evaluates issue #7's targets. MB is 10^6 bytes throughout.
func targets(r *Report) []Target {
	w, m := r.Warm, r.Memory
	t := []Target{
		{Name: "warm overhead p50", Measured: round3(w.Header.P50 - w.Direct.P50), Limit: 0.08, Unit: "ms",
			How: "p50 through the watchdog (header form) minus p50 direct"},
		{Name: "warm overhead p99", Measured: round3(w.Header.P99 - w.Direct.P99), Limit: 0.25, Unit: "ms",
			How: "p99 through the watchdog (header form) minus p99 direct"},
		{Name: "STDIO per invocation p50", Measured: r.STDIO.Watchdog.P50, Limit: 1.0, Unit: "ms",
			How: "p50 of a call through WARM=true EXECUTION_MODE=STDIO, cat-like Go handler"},
		{Name: "start to serving", Measured: round3(r.Startup.Watchdog.P50 - r.Startup.Runtime.P50), Limit: 5, Unit: "ms",
			How: "p50 exec->/health 200 of the watchdog minus that of the runtime alone"},
		{Name: "idle RSS", Measured: kbToMB(m.IdleRSSKB), Limit: 5, Unit: "MB",
			How: fmt.Sprintf("VmRSS of the WARM watchdog, idle (of which anon %.2f MB)", kbToMB(m.IdleRssAnonKB))},
		{Name: "RSS growth", Measured: kbToMB(m.EndRSSKB - m.IdleRSSKB), Limit: 1, Unit: "MB",
			How: fmt.Sprintf("VmRSS after %d calls minus idle (second half of the calls: %+.2f MB)", m.Calls, kbToMB(m.EndRSSKB-m.MidRSSKB))},
		{Name: "binary size", Measured: round3(float64(r.Binary) / mb), Limit: 5, Unit: "MB",
			How: "watchdog/cmd/watchdog, CGO_ENABLED=0 -trimpath -ldflags='-s -w'"},
	}
	if r.Short {
		t[6].How = "watchdog/cmd/watchdog, --short: -ldflags='-s -w' only, so the size is indicative"
	}
	t = append(t, linesTargets(r.Lines)...)
	for i := range t {
		t[i].Met = t[i].Measured <= t[i].Limit
		if t[i].AtLeast {
			t[i].Met = t[i].Measured >= t[i].Limit
		}
	}
	return t
}

func kbToMB(kb int64) float64 { return round3(float64(kb) * 1024 / mb) }

func printTable(w io.Writer, r *Report) {
	m := r.Machine
	mode := ""
	if r.Short {
		mode = "  [--short: small counts, rough figures]"
	}
	fmt.Fprintf(w, "\nwatchdog benchmark %s: %s/%s, %d CPUs, kernel %s, %s%s\n\n", r.Date, m.OS, m.Arch, m.CPUs, m.Kernel, m.Go, mode)

	fmt.Fprintf(w, "%-50s %6s %9s %9s %9s\n", "latency (ms)", "n", "p50", "p99", "mean")
	row := func(name string, s Summary) {
		fmt.Fprintf(w, "%-50s %6d %9.3f %9.3f %9.3f\n", name, s.N, s.P50, s.P99, s.Mean)
	}
	diff := func(name string, a, b Summary) {
		fmt.Fprintf(w, "%-50s %6s %+9.3f %+9.3f %+9.3f\n", name, "", a.P50-b.P50, a.P99-b.P99, a.Mean-b.Mean)
	}
	row("1. warm: runtime called directly", r.Warm.Direct)
	row("   behind a TCP relay (floor: an extra process)", r.Warm.Relay)
	row("   behind a trivial Go HTTP hop (floor: a hop)", r.Warm.Hop)
	row("   through the watchdog, header form", r.Warm.Header)
	row("   through the watchdog, envelope form", r.Warm.Envelope)
	diff("   overhead: watchdog (header) - direct", r.Warm.Header, r.Warm.Direct)
	diff("   floor: relay - direct", r.Warm.Relay, r.Warm.Direct)
	diff("   floor: HTTP hop - direct", r.Warm.Hop, r.Warm.Direct)
	diff("   watchdog (header) - HTTP hop", r.Warm.Header, r.Warm.Hop)
	row("2. STDIO: Go cat-like handler spawned from Go", r.STDIO.Direct)
	row("   through the watchdog (WARM=true, STDIO)", r.STDIO.Watchdog)
	diff("   overhead", r.STDIO.Watchdog, r.STDIO.Direct)
	if r.STDIO.CatDirect != nil {
		row("   /bin/cat spawned from Go", *r.STDIO.CatDirect)
		row("   /bin/cat through the watchdog", *r.STDIO.CatWatchdog)
		diff("   overhead", *r.STDIO.CatWatchdog, *r.STDIO.CatDirect)
	}
	row("3. one-shot: handler run from Go", r.OneShot.Direct)
	row("   watchdog started -> callback arrived", r.OneShot.Watchdog)
	diff("   overhead", r.OneShot.Watchdog, r.OneShot.Direct)
	row("4. start: runtime alone, exec -> /health 200", r.Startup.Runtime)
	row("   watchdog (WARM), exec -> /health 200", r.Startup.Watchdog)
	diff("   overhead", r.Startup.Watchdog, r.Startup.Runtime)
	printLines(w, r.Lines, row)

	mem := r.Memory
	mbs := func(kb int64) string { return fmt.Sprintf("%.2f MB", kbToMB(kb)) }
	fmt.Fprintf(w, "\n5. memory (VmRSS) of the WARM watchdog: idle %s (anon %s + file %s); after %d calls %s, after %d %s (anon %s, peak %s). The runtime alone idles at %s.\n",
		mbs(mem.IdleRSSKB), mbs(mem.IdleRssAnonKB), mbs(mem.IdleRssFileKB), mem.Calls/2, mbs(mem.MidRSSKB), mem.Calls,
		mbs(mem.EndRSSKB), mbs(mem.EndRssAnonKB), mbs(mem.PeakRSSKB), mbs(mem.RuntimeIdleRSSKB))
	fmt.Fprintf(w, "6. binary: %.2f MB (%d bytes), built with: %s\n", float64(r.Binary)/mb, r.Binary, r.Build)
	printThroughput(w, r.Throughput)
	fmt.Fprintln(w)

	fmt.Fprintf(w, "%-25s %10s %10s  %-6s  %s\n", "target", "measured", "target", "", "how")
	for _, t := range r.Targets {
		status := "met"
		if !t.Met {
			status = "MISSED"
		}
		bound := "<= "
		if t.AtLeast {
			bound = ">= "
		}
		fmt.Fprintf(w, "%-25s %7.3f %-2s %10s  %-6s  %s\n", t.Name, t.Measured, t.Unit, bound+trimFloat(t.Limit)+" "+t.Unit, status, t.How)
	}
	fmt.Fprintf(w, "\n(%.0f s; MB = 10^6 bytes; targets are reported, not asserted)\n", r.Duration)
}

func trimFloat(f float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}
