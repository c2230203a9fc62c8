// Package server is the server lifecycle (WARM): the watchdog serves
// /invoke, /health and /metrics on WARM_PORT and runs up to
// WARM_CONCURRENCY invocations at once, with a bounded queue in front
// (queue.go). With a protocol that keeps a process (protocol.Process: HTTP,
// and STDIO with STDIO_PROTOCOL=lines) the runtime is spawned once, kept
// warm and supervised (warm.go); with STDIO and FILE otherwise a process
// runs per invocation.
package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/callback"
	"nanofaas.dev/watchdog/internal/metrics"
	"nanofaas.dev/watchdog/internal/protocol"
)

// ExitServeError is the exit status when WARM_PORT cannot be served.
const ExitServeError = 1

// Options are the bounds of the server's own HTTP serving and of its
// pending callbacks: fields rather than package variables, so that tests
// can shorten them for one server while others run in parallel.
type Options struct {
	// Timeouts of the watchdog's own HTTP server. /invoke extends the
	// read and write deadlines of its connection to the invocation's
	// budget, so these bound only the rest: headers, bodies, probes,
	// scrapes and idle keep-alives.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers (431 past it).
	MaxHeaderBytes int
	// ShutdownTimeout bounds closing the HTTP server once nothing is in
	// flight (writing the last answers).
	ShutdownTimeout time.Duration
	// BudgetSlack is added to an invocation's deadline on its connection
	// beyond its timeout, the wait for the runtime and the kill grace.
	BudgetSlack time.Duration
	// DeliveryDrainTimeout bounds how long shutdown waits for callbacks
	// still being retried; past it they are given up, and each result is
	// logged whole as undelivered (nothing is lost).
	DeliveryDrainTimeout time.Duration
	// MaxPendingDeliveries and MaxPendingBytes bound the results waiting
	// for their callback (see deliver).
	MaxPendingDeliveries int
	MaxPendingBytes      int64
}

// DefaultOptions are the options of Run.
func DefaultOptions() Options {
	return Options{
		ReadHeaderTimeout:    10 * time.Second,
		ReadTimeout:          60 * time.Second,
		WriteTimeout:         30 * time.Second,
		IdleTimeout:          120 * time.Second,
		MaxHeaderBytes:       64 << 10,
		ShutdownTimeout:      5 * time.Second,
		BudgetSlack:          10 * time.Second,
		DeliveryDrainTimeout: 10 * time.Second,
		MaxPendingDeliveries: 256,
		MaxPendingBytes:      64 << 20,
	}
}

// Server serves invocations. Create it with New, run it with Serve.
type Server struct {
	cfg  config.Config
	opts Options
	deps protocol.Deps
	cb   *callback.Client
	log  *slog.Logger
	m    *metrics.Metrics

	// warm supervises the warm runtime (a protocol.Process); nil with
	// the per-invocation protocols.
	warm *warm
	// perCall holds one Invoker per slot for the per-invocation
	// protocols (FILE needs its own files per slot); nil with a warm
	// runtime.
	perCall chan protocol.Invoker

	authHash *[sha256.Size]byte

	// q admits requests: WARM_CONCURRENCY slots, WARM_QUEUE_SIZE waiting.
	q        *queue
	draining atomic.Bool
	epoch    time.Time
	// lastEnd is when the last invocation ended, in ns since epoch.
	lastEnd atomic.Int64

	deliveries sync.WaitGroup
	// pending counts the deliveries in progress (see deliveryBudget).
	pending deliveryBudget
	// deliveryCtx is cancelled when shutdown stops waiting for deliveries.
	deliveryCtx      context.Context
	cancelDeliveries context.CancelFunc
}

// New returns a server for cfg with DefaultOptions; it starts nothing.
func New(cfg config.Config, deps protocol.Deps, cb *callback.Client) *Server {
	return NewWithOptions(cfg, deps, cb, DefaultOptions())
}

// NewWithOptions returns a server for cfg with opts (start from
// DefaultOptions: a zero field is not a default); it starts nothing.
func NewWithOptions(cfg config.Config, deps protocol.Deps, cb *callback.Client, opts Options) *Server {
	fn := cfg.FunctionName
	concurrency := max(cfg.WarmConcurrency, 1)
	s := &Server{
		cfg: cfg, opts: opts, deps: deps, cb: cb, log: deps.Log,
		m:     metrics.New(fn, cfg.Mode, deps.Procs.OrphansReaped),
		q:     newQueue(concurrency, cfg.WarmQueueSize),
		epoch: time.Now(),
	}
	s.pending.maxN, s.pending.maxBytes = opts.MaxPendingDeliveries, opts.MaxPendingBytes
	s.m.CountLogDropped(deps.LogDropped)
	s.m.ReadQueueDepth(func() uint64 {
		_, _, waiting := s.q.counts()
		return uint64(waiting)
	})
	if first := protocol.NewProcess(cfg, deps); first != nil {
		// Each (re)start needs a fresh Process; the first is this one.
		// Called by the supervisor's goroutine only.
		s.warm = newWarm(cfg, deps, s.m, func() protocol.Process {
			if p := first; p != nil {
				first = nil
				return p
			}
			return protocol.NewProcess(cfg, deps)
		})
	} else {
		s.perCall = perCallPool(cfg, deps, concurrency)
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
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
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
	s.log.Info("serving invocations", "addr", ln.Addr().String(), "protocol", string(s.cfg.Protocol),
		"mode", s.cfg.Mode, "function", s.cfg.FunctionName,
		"concurrency", s.q.concurrency, "queue_size", s.q.size)

	reason, status := s.waitForStop(ctx, serveErr)
	began := time.Now()
	_, running, waiting := s.q.counts()
	// The invocations in flight complete; the queued ones are refused
	// with 503 SHUTTING_DOWN.
	s.log.Info("shutting down: draining", "reason", reason, "in_flight", running, "queued", waiting)
	s.draining.Store(true)
	s.q.close()
	s.q.waitEmpty()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	_ = srv.Shutdown(shutdownCtx)
	cancel()
	_ = srv.Close()

	stopRuntime()
	if s.warm != nil {
		s.warm.wait()
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
			if places, _, _ := s.q.counts(); places > 0 {
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

// perCallPool holds an Invoker per slot. FILE with more than one slot
// gives each its own INPUT_FILE and OUTPUT_FILE (the configured names with
// "-<slot>" before the extension), so that invocations side by side do
// not share files.
func perCallPool(cfg config.Config, deps protocol.Deps, slots int) chan protocol.Invoker {
	pool := make(chan protocol.Invoker, slots)
	for i := 1; i <= slots; i++ {
		c := cfg
		if cfg.Protocol == config.ProtocolFILE && slots > 1 {
			c.InputFile, c.OutputFile = slotPath(cfg.InputFile, i), slotPath(cfg.OutputFile, i)
		}
		pool <- protocol.NewPerInvocation(c, deps)
	}
	return pool
}

// slotPath is path with "-<slot>" before its extension:
// /tmp/input.json -> /tmp/input-2.json.
func slotPath(path string, slot int) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + strconv.Itoa(slot) + ext
}

// waitDeliveries waits for the callbacks still being retried, up to
// Options.DeliveryDrainTimeout; then it gives them up, which logs each result whole
// as undelivered.
func (s *Server) waitDeliveries() {
	defer s.cancelDeliveries()
	done := make(chan struct{})
	go func() {
		s.deliveries.Wait()
		close(done)
	}()
	t := time.NewTimer(s.opts.DeliveryDrainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("callbacks still pending at shutdown; giving up on them (each result is logged as undelivered)",
			"waited_ms", s.opts.DeliveryDrainTimeout.Milliseconds())
		s.cancelDeliveries()
		<-done
	}
}
