// Package server is the server lifecycle (WARM): the watchdog serves
// /invoke, /health and /metrics on WARM_PORT and runs invocations one at a
// time. With the HTTP protocol the runtime is spawned once, kept warm and
// supervised (warm.go); with STDIO and FILE a process runs per invocation,
// except with STDIO_PROTOCOL=lines, where one STDIO process is kept warm
// and supervised the same way (lines.go).
package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"nanofaas.dev/watchdog/internal/callback"
	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/metrics"
	"nanofaas.dev/watchdog/internal/protocol"
)

// ExitServeError is the exit status when WARM_PORT cannot be served.
const ExitServeError = 1

// Timeouts of the watchdog's own HTTP server. /invoke extends the read and
// write deadlines of its connection to the invocation's budget, so these
// bound only the rest: headers, bodies, probes, scrapes and idle keep-alives.
// Variables only so that the fault tests can shorten them.
var (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	// shutdownTimeout bounds closing the HTTP server once nothing is in
	// flight (writing the last answers).
	shutdownTimeout = 5 * time.Second
	// budgetSlack is added to an invocation's deadline on its connection
	// beyond its timeout, the wait for the runtime and the kill grace.
	budgetSlack = 10 * time.Second
)

// deliveryDrainTimeout bounds how long shutdown waits for callbacks still
// being retried; past it they are given up, and each result is logged
// whole as undelivered (nothing is lost). A variable for the tests.
var deliveryDrainTimeout = 10 * time.Second

// Bounds on the results waiting for their callback (see deliver).
// Variables only so that the fault tests can lower them.
var (
	maxPendingDeliveries       = 256
	maxPendingBytes      int64 = 64 << 20
)

// Server serves invocations. Create it with New, run it with Serve.
type Server struct {
	cfg  config.Config
	deps protocol.Deps
	cb   *callback.Client
	log  *slog.Logger
	m    *metrics.Metrics

	// warm supervises the HTTP runtime; nil with STDIO and FILE.
	warm *warm
	// perCall runs STDIO and FILE invocations; nil with HTTP.
	perCall protocol.Runtime
	// lines supervises a STDIO function kept warm (STDIO_PROTOCOL=lines);
	// perCall is nil then.
	lines *linesWarm

	authHash *[sha256.Size]byte

	busy     atomic.Bool
	draining atomic.Bool
	// released gets a token whenever an invocation ends, for the drain.
	released chan struct{}
	epoch    time.Time
	// lastEnd is when the last invocation ended, in ns since epoch.
	lastEnd atomic.Int64

	deliveries sync.WaitGroup
	// pendingN and pendingBytes count the deliveries in progress.
	pendingMu    sync.Mutex
	pendingN     int
	pendingBytes int64
	// deliveryCtx is cancelled when shutdown stops waiting for deliveries.
	deliveryCtx      context.Context
	cancelDeliveries context.CancelFunc
}

// New returns a server for cfg; it starts nothing.
func New(cfg config.Config, deps protocol.Deps, cb *callback.Client) *Server {
	fn := cfg.FunctionName
	s := &Server{
		cfg: cfg, deps: deps, cb: cb, log: deps.Log,
		m:        metrics.New(fn, cfg.Mode, deps.Procs.OrphansReaped),
		released: make(chan struct{}, 1),
		epoch:    time.Now(),
	}
	if cfg.Protocol == config.ProtocolHTTP {
		s.warm = newWarm(cfg, deps, s.m)
	} else if cfg.Protocol == config.ProtocolSTDIO && cfg.StdioProtocol == config.StdioLines {
		s.lines = newLinesWarm(cfg, deps, s.m)
	} else {
		s.perCall = protocol.New(cfg, deps)
	}
	s.deliveryCtx, s.cancelDeliveries = context.WithCancel(context.Background())
	if cfg.WarmAuthToken != "" {
		h := sha256.Sum256([]byte(cfg.WarmAuthToken))
		s.authHash = &h
	}
	return s
}

// Run serves on WARM_PORT until ctx is cancelled (a stop signal) or
// WARM_IDLE_TIMEOUT_MS passes without an invocation, then drains and
// returns the exit status: 0 after a clean stop.
func Run(ctx context.Context, cfg config.Config, deps protocol.Deps, cb *callback.Client) int {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.WarmPort))
	if err != nil {
		deps.Log.Error("cannot serve on WARM_PORT", "port", cfg.WarmPort, "error", err.Error())
		return ExitServeError
	}
	return New(cfg, deps, cb).Serve(ctx, ln)
}

// Serve serves on ln; see Run.
func (s *Server) Serve(ctx context.Context, ln net.Listener) int {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if s.cfg.WarmMaxConnections > 0 {
		ln = newLimitListener(ln, s.cfg.WarmMaxConnections, s.log,
			func() { s.m.Rejected(CodeTooManyConnections) })
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	runtimeCtx, stopRuntime := context.WithCancel(context.Background())
	defer stopRuntime()
	if s.warm != nil {
		go s.warm.run(runtimeCtx)
	}
	if s.lines != nil {
		go s.lines.run(runtimeCtx)
	}
	s.log.Info("serving invocations", "addr", ln.Addr().String(), "protocol", string(s.cfg.Protocol),
		"mode", s.cfg.Mode, "function", s.cfg.FunctionName)

	reason, status := s.waitForStop(ctx, serveErr)
	began := time.Now()
	s.log.Info("shutting down: draining", "reason", reason, "in_flight", s.busy.Load())
	s.draining.Store(true)
	s.waitInFlight()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	_ = srv.Shutdown(shutdownCtx)
	cancel()
	_ = srv.Close()

	stopRuntime()
	if s.warm != nil {
		s.warm.wait()
	}
	if s.lines != nil {
		s.lines.wait()
	}
	s.waitDeliveries()
	s.log.Info("stopped", "reason", reason, "drain_ms", time.Since(began).Milliseconds())
	return status
}

// waitForStop returns why the server must stop, and the exit status.
func (s *Server) waitForStop(ctx context.Context, serveErr <-chan error) (string, int) {
	idle := s.cfg.WarmIdleTimeout
	var idleC <-chan time.Time
	var timer *time.Timer
	if idle > 0 {
		timer = time.NewTimer(idle)
		defer timer.Stop()
		idleC = timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return stopCause(ctx), 0
		case err := <-serveErr:
			s.log.Error("serving WARM_PORT failed", "error", err.Error())
			return "serving failed", ExitServeError
		case <-idleC:
			if s.busy.Load() {
				timer.Reset(idle)
				continue
			}
			quiet := time.Duration(int64(time.Since(s.epoch)) - s.lastEnd.Load())
			if quiet < idle {
				timer.Reset(idle - quiet)
				continue
			}
			return fmt.Sprintf("no invocation for WARM_IDLE_TIMEOUT_MS=%d", idle.Milliseconds()), 0
		}
	}
}

func stopCause(ctx context.Context) string {
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		return cause.Error()
	}
	return "stop requested"
}

// waitInFlight waits until no invocation is in flight. Each is bounded by
// its own timeout, so this is too.
func (s *Server) waitInFlight() {
	for s.busy.Load() {
		select {
		case <-s.released:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// release ends an invocation's hold on the single slot.
func (s *Server) release() {
	s.lastEnd.Store(int64(time.Since(s.epoch)))
	s.busy.Store(false)
	select {
	case s.released <- struct{}{}:
	default:
	}
}

// unclaim gives the slot back after a request that ran no invocation (its
// body could not be read or parsed), without counting it as activity for
// WARM_IDLE_TIMEOUT_MS.
func (s *Server) unclaim() {
	s.busy.Store(false)
	select {
	case s.released <- struct{}{}:
	default:
	}
}

// waitDeliveries waits for the callbacks still being retried, up to
// deliveryDrainTimeout; then it gives them up, which logs each result whole
// as undelivered.
func (s *Server) waitDeliveries() {
	defer s.cancelDeliveries()
	done := make(chan struct{})
	go func() {
		s.deliveries.Wait()
		close(done)
	}()
	t := time.NewTimer(deliveryDrainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("callbacks still pending at shutdown; giving up on them (each result is logged as undelivered)",
			"waited_ms", deliveryDrainTimeout.Milliseconds())
		s.cancelDeliveries()
		<-done
	}
}
