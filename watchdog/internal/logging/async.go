package logging

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultQueueBytes is how much output an AsyncWriter holds while its
// destination does not take it (nobody reads the container log).
const DefaultQueueBytes = 1 << 20

// AsyncWriter writes to a destination that may block (a pipe nobody reads)
// without ever blocking its callers: Write queues the bytes and returns at
// once, and one goroutine writes the queue out. What does not fit in the
// queue is dropped whole (a Write is a record or a line, never cut) and
// counted. Once the destination takes bytes again, the record Notice
// returns (when set) for the number of writes dropped since the last one
// is written, so that the log says what it lost.
//
// Writes are written in order; one Write is never interleaved with
// another. The queue holds at most limit bytes, or a single write of any
// size when it is empty (a large record, such as a whole undelivered
// result, is never refused for its size alone).
type AsyncWriter struct {
	w     io.Writer
	limit int

	mu      sync.Mutex
	wake    *sync.Cond
	pending []byte
	// writing is true while the goroutine holds bytes it has not written.
	writing  bool
	closed   bool
	unmarked uint64 // dropped since OnDrop was last called
	dropped  atomic.Uint64
	done     chan struct{}

	// Notice, when not nil, returns the record that says n writes were
	// dropped; the writing goroutine writes it itself, after the next
	// successful write, so it is never dropped. It must not write to the
	// AsyncWriter. Set it before the first Write.
	Notice func(n uint64) []byte
}

// NewAsyncWriter starts the goroutine that writes to w; limit is the most
// bytes queued (DefaultQueueBytes when <= 0). Close stops it.
func NewAsyncWriter(w io.Writer, limit int) *AsyncWriter {
	if limit <= 0 {
		limit = DefaultQueueBytes
	}
	a := &AsyncWriter{w: w, limit: limit, done: make(chan struct{})}
	a.wake = sync.NewCond(&a.mu)
	go a.run()
	return a
}

// Write queues p, or drops it when the queue is full; it never blocks on
// the destination and never fails.
func (a *AsyncWriter) Write(p []byte) (int, error) {
	a.mu.Lock()
	if a.closed || len(a.pending) > 0 && len(a.pending)+len(p) > a.limit {
		a.unmarked++
		a.mu.Unlock()
		a.dropped.Add(1)
		return len(p), nil
	}
	a.pending = append(a.pending, p...)
	a.mu.Unlock()
	a.wake.Signal()
	return len(p), nil
}

// Dropped returns how many writes were dropped so far.
func (a *AsyncWriter) Dropped() uint64 { return a.dropped.Load() }

func (a *AsyncWriter) run() {
	defer close(a.done)
	var spare []byte
	for {
		a.mu.Lock()
		for len(a.pending) == 0 && !a.closed {
			a.wake.Wait()
		}
		if len(a.pending) == 0 {
			n := a.unmarked
			a.unmarked = 0
			a.mu.Unlock()
			if n > 0 && a.Notice != nil {
				_, _ = a.w.Write(a.Notice(n))
			}
			return
		}
		buf := a.pending
		a.pending = spare[:0]
		a.writing = true
		a.mu.Unlock()

		_, err := a.w.Write(buf)

		a.mu.Lock()
		a.writing = false
		n := a.unmarked
		if err == nil {
			a.unmarked = 0
		}
		a.mu.Unlock()
		if err == nil && n > 0 && a.Notice != nil {
			_, _ = a.w.Write(a.Notice(n))
		}
		// A buffer grown by one huge record is not kept.
		if cap(buf) > 4*a.limit {
			buf = nil
		}
		spare = buf
	}
}

// Close writes what is queued, waiting at most timeout for the
// destination, then stops the goroutine; later writes are dropped. It
// returns false when the queue could not be written in time.
func (a *AsyncWriter) Close(timeout time.Duration) bool {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.wake.Broadcast()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-a.done:
		return true
	case <-t.C:
		return false
	}
}
