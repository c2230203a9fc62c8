// Package logging builds the watchdog's logger. The writer that keeps its
// records and the function's lines whole is procio.SyncWriter.
package logging

import (
	"io"
	"log/slog"
)

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
