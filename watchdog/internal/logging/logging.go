// Package logging builds the watchdog's logger and the writers that pass the
// function's output through to the container log without interleaving lines.
package logging

import (
	"io"
	"log/slog"
	"sync"
)

// SyncWriter serialises writes, so that log records and lines passed through
// from the function never interleave mid-line.
type SyncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewSyncWriter wraps w.
func NewSyncWriter(w io.Writer) *SyncWriter { return &SyncWriter{w: w} }

// Write writes p in one piece.
func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// New returns a logger writing one record per line to w, as JSON unless
// format is "text".
func New(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h)
}
