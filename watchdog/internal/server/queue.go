package server

import (
	"sync"
	"time"
)

// queue admits /invoke requests: at most concurrency (WARM_CONCURRENCY)
// invocations run at once, and at most size (WARM_QUEUE_SIZE) more wait
// for a slot, served in arrival order.
//
// A request holds a place from the first byte of its body (or, without a
// body, from its headers) until it is answered: places bound the bodies
// held in memory to concurrency + size. It takes a slot only once its
// body is read and parsed, so a client that announces a body and never
// sends it (Expect: 100-continue) holds neither, and one that sends it
// slowly holds a place, not a slot.
type queue struct {
	concurrency, size int

	mu      sync.Mutex
	places  int       // requests uploading, waiting or running
	running int       // slots taken
	waiters []*waiter // waiting for a slot, oldest first
	closed  bool      // draining: no new places, waiters refused
	// changed gets a token whenever places goes down or the queue
	// closes, for the drain.
	changed chan struct{}
}

// waiter is one request waiting for a slot.
type waiter struct {
	// ready is closed when the waiter is given a slot or refused.
	ready   chan struct{}
	granted bool
}

// admission is how a wait for a slot ended.
type admission int

const (
	admitted admission = iota
	// waitOver: the wait reached its bound.
	waitOver
	// draining: the watchdog began shutting down.
	draining
)

func newQueue(concurrency, size int) *queue {
	return &queue{concurrency: concurrency, size: size, changed: make(chan struct{}, 1)}
}

// enter takes a place, unless every place is taken or the queue is closed.
func (q *queue) enter() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.places >= q.concurrency+q.size {
		return false
	}
	q.places++
	return true
}

// leave gives a place back.
func (q *queue) leave() {
	q.mu.Lock()
	q.places--
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.changed <- struct{}{}:
	default:
	}
}

// acquire takes a slot for a request that holds a place, waiting up to
// wait for one in arrival order. It returns how the wait ended and how
// long it took.
func (q *queue) acquire(wait time.Duration) (admission, time.Duration) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return draining, 0
	}
	if q.running < q.concurrency && len(q.waiters) == 0 {
		q.running++
		q.mu.Unlock()
		return admitted, 0
	}
	w := &waiter{ready: make(chan struct{})}
	q.waiters = append(q.waiters, w)
	q.mu.Unlock()

	began := time.Now()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-w.ready:
	case <-timer.C:
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	waited := time.Since(began)
	if w.granted {
		// Granted, maybe just as the timer fired: the slot is this
		// request's.
		return admitted, waited
	}
	q.remove(w)
	if q.closed {
		return draining, waited
	}
	return waitOver, waited
}

// remove takes w out of the waiters; the lock is held.
func (q *queue) remove(w *waiter) {
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			return
		}
	}
}

// release gives a slot back: to the oldest waiter when there is one.
func (q *queue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) > 0 && !q.closed {
		w := q.waiters[0]
		q.waiters = q.waiters[1:]
		w.granted = true
		close(w.ready)
		return
	}
	q.running--
}

// close refuses every waiter (they answer 503 SHUTTING_DOWN) and every new
// place: the drain completes what runs and refuses what waits.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	for _, w := range q.waiters {
		close(w.ready)
	}
	q.waiters = nil
	q.mu.Unlock()
	q.signal()
}

// counts returns the places held, the slots taken and the waiters.
func (q *queue) counts() (places, running, waiting int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.places, q.running, len(q.waiters)
}

// full reports whether a new request would be refused for want of a
// place.
func (q *queue) full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.places >= q.concurrency+q.size
}

// waitEmpty waits until no place is held. Each request is bounded (its
// body by the read timeout, its wait and run by its timeout), so this is
// too.
func (q *queue) waitEmpty() {
	for {
		if places, _, _ := q.counts(); places == 0 {
			return
		}
		select {
		case <-q.changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}
