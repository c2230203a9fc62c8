package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"nanofaas.dev/devkit/freeport"
)

// LinesReport is measurement 7: a script function per invocation against
// the same function kept warm with STDIO_PROTOCOL=lines, for each
// interpreter found on PATH, next to the warm HTTP runtime (gohttp behind a
// WARM watchdog, header form) measured in the same loop as the warm calls.
type LinesReport struct {
	// WarmHTTP is the Go HTTP runtime behind a WARM watchdog.
	WarmHTTP  Summary         `json:"warm_http"`
	Languages []LinesLanguage `json:"languages"`
}

// LinesLanguage is one interpreter's figures: the examples
// examples/<lang>-stdio (a process per invocation) and
// examples/<lang>-stdio-warm (STDIO_PROTOCOL=lines), both through a
// server-mode watchdog, header form.
type LinesLanguage struct {
	Language string  `json:"language"`
	Spawn    Summary `json:"per_invocation"`
	Lines    Summary `json:"lines"`
	// SpawnPerSec and LinesPerSec are calls per second, one client, one
	// call at a time (1000 / mean ms).
	SpawnPerSec float64 `json:"per_invocation_calls_per_s"`
	LinesPerSec float64 `json:"lines_calls_per_s"`
}

// linesLanguages are the interpreters measured, with how their examples run.
// whoAmI makes the interpreter print its own path: a launcher such as a
// version manager's shim (a shell script) would add its own start to every
// spawn.
var linesLanguages = []struct {
	name, interpreter, file string
	whoAmI                  []string
}{
	{"python", "python3", "handler.py", []string{"-c", "import sys; print(sys.executable)"}},
	{"node", "node", "handler.js", []string{"-p", "process.execPath"}},
}

// linesPayload is what every call of measurement 7 sends; the examples
// uppercase "input".
var linesPayload = []byte(`{"input":"hello, watchdog"}`)

func perSecond(s Summary) float64 {
	if s.Mean <= 0 {
		return 0
	}
	return round3(1000 / s.Mean)
}

// startLinesWatchdog starts a server-mode STDIO watchdog for cmd and waits
// until it serves.
func startLinesWatchdog(ctx context.Context, bins binaries, c *http.Client, name, cmd string, lines bool) (*target, *proc, error) {
	port, err := freeport.Pick()
	if err != nil {
		return nil, nil, err
	}
	protocol := "per-invocation"
	if lines {
		protocol = "lines"
	}
	wd, err := startProc("watchdog (STDIO_PROTOCOL="+protocol+", "+name+")", bins.watchdog, append([]string{
		"WARM=true", "EXECUTION_MODE=STDIO", "STDIO_PROTOCOL=" + protocol, "WATCHDOG_CMD=" + cmd,
		"WARM_PORT=" + strconv.Itoa(port), "WARM_IDLE_TIMEOUT_MS=0",
	}, commonEnv...))
	if err != nil {
		return nil, nil, err
	}
	if _, err := waitReady(ctx, c, local(port, "/health"), wd, 5*time.Millisecond, 15*time.Second); err != nil {
		wd.stop(5 * time.Second)
		return nil, nil, err
	}
	return &target{name: name + " " + protocol, url: local(port, "/invoke"),
		header:     http.Header{"Content-Type": {"application/json"}, "X-Execution-Id": {"bench-lines"}},
		body:       linesPayload,
		wantPrefix: []byte(`{"input":`)}, wd, nil
}

// benchLines measures, for each interpreter on PATH, its example spawned
// per invocation and kept warm; the warm calls are interleaved with calls
// of the warm HTTP runtime, the spawned ones with each other.
func benchLines(ctx context.Context, root string, bins binaries, s settings) (LinesReport, error) {
	var r LinesReport
	c := newClient()
	defer c.CloseIdleConnections()
	wd, port, err := startWarm(ctx, bins, c)
	if err != nil {
		return r, err
	}
	defer wd.stop(5 * time.Second)
	warmTargets := []*target{headerForm(port)}
	var spawnTargets []*target
	var names []string
	for _, l := range linesLanguages {
		if _, err := exec.LookPath(l.interpreter); err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, l.interpreter, l.whoAmI...).Output()
		if err != nil {
			return r, fmt.Errorf("cannot find where %s is: %w", l.interpreter, err)
		}
		interp := strings.TrimSpace(string(out))
		names = append(names, l.name)
		for _, lines := range []bool{false, true} {
			dir := filepath.Join(root, "examples", l.name+"-stdio")
			if lines {
				dir += "-warm"
			}
			cmd := "'" + interp + "' '" + filepath.Join(dir, l.file) + "'"
			t, p, err := startLinesWatchdog(ctx, bins, c, l.name, cmd, lines)
			if err != nil {
				return r, err
			}
			defer p.stop(5 * time.Second)
			if lines {
				warmTargets = append(warmTargets, t)
			} else {
				spawnTargets = append(spawnTargets, t)
			}
		}
	}
	warm, err := interleave(ctx, c, warmTargets, s.warmup, s.warmCalls)
	if err != nil {
		return r, err
	}
	spawn, err := interleave(ctx, c, spawnTargets, s.stdioWarmup/4+1, s.linesSpawnCalls)
	if err != nil {
		return r, err
	}
	r.WarmHTTP = summarize(warm[0])
	for i, name := range names {
		l := LinesLanguage{Language: name, Spawn: summarize(spawn[i]), Lines: summarize(warm[i+1])}
		l.SpawnPerSec, l.LinesPerSec = perSecond(l.Spawn), perSecond(l.Lines)
		r.Languages = append(r.Languages, l)
	}
	return r, nil
}

// linesTargets are issue #15's targets for the Python handler.
func linesTargets(r LinesReport) []Target {
	var out []Target
	for _, l := range r.Languages {
		if l.Language != "python" {
			continue
		}
		out = append(out,
			Target{Name: "python lines vs warm HTTP", Measured: round3(l.Lines.P50 - r.WarmHTTP.P50), Limit: 0.5, Unit: "ms",
				How: "p50 of the python-stdio-warm example (STDIO_PROTOCOL=lines) minus p50 of the warm Go HTTP runtime, same loop"},
			Target{Name: "python lines speed-up", Measured: round3(l.Spawn.P50 / l.Lines.P50), Limit: 20, Unit: "x", AtLeast: true,
				How: "p50 of python-stdio spawned per invocation / p50 of python-stdio-warm kept warm"})
	}
	return out
}

// printLines prints measurement 7.
func printLines(w io.Writer, r LinesReport, row func(string, Summary)) {
	row("8. warm HTTP runtime (Go) through the watchdog", r.WarmHTTP)
	for _, l := range r.Languages {
		row(fmt.Sprintf("   %s example spawned per invocation", l.Language), l.Spawn)
		row(fmt.Sprintf("   %s example kept warm (STDIO_PROTOCOL=lines)", l.Language), l.Lines)
		fmt.Fprintf(w, "   %s: warm %+.3f ms p50 from warm HTTP; %.0f calls/s warm vs %.1f spawned (x%.1f at p50)\n",
			l.Language, l.Lines.P50-r.WarmHTTP.P50, l.LinesPerSec, l.SpawnPerSec, l.Spawn.P50/l.Lines.P50)
	}
}
