// Package procio holds the writers that carry a supervised process's
// output: SyncWriter keeps the lines of concurrent writers whole, Tail keeps
// the end of a stream for error messages. The watchdog, the emulator and the
// tools share them.
package procio

import (
	"io"
	"sync"
)

// SyncWriter serialises writes, so that log records and lines passed
// through from a process never interleave mid-line.
type SyncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewSyncWriter wraps w; a SyncWriter is returned as it is, so wrapping
// twice costs nothing.
func NewSyncWriter(w io.Writer) *SyncWriter {
	if s, ok := w.(*SyncWriter); ok {
		return s
	}
	return &SyncWriter{w: w}
}

// Write writes p to the wrapped writer in one piece.
func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// DefaultTailSize is how much a Tail keeps when Max is not set: enough for
// the last lines of an error message.
const DefaultTailSize = 4096

// Tail keeps the last bytes written to it. The zero value keeps
// DefaultTailSize bytes; it is safe for concurrent use.
type Tail struct {
	// Max is how many bytes are kept (DefaultTailSize when 0). Set it
	// before the first Write.
	Max int

	mu  sync.Mutex
	buf []byte
}

// Write keeps the end of p (and of what came before) up to Max bytes. It
// never fails.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	limit := t.Max
	if limit <= 0 {
		limit = DefaultTailSize
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns the kept bytes.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
