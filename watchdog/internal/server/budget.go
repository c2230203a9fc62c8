package server

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
)

// deliveryBudget bounds the results waiting for their callback
// (Options.MaxPendingDeliveries results and MaxPendingBytes of them in all) so
// that a receiver that hangs cannot make the watchdog hold a goroutine, a
// connection and a result for every invocation.
//
// The budget is not first come, first served: callers who choose a
// callback_url could otherwise fill it with results bound for a receiver
// that never answers (a tarpit), and results bound for CALLBACK_URL, the
// trusted control plane, would be shed. Request-chosen destinations share
// at most three quarters of it, and each of them (scheme, host and port)
// at most a quarter; the rest is kept for CALLBACK_URL.
type deliveryBudget struct {
	// maxN and maxBytes are the bounds (Options.MaxPendingDeliveries and
	// MaxPendingBytes).
	maxN     int
	maxBytes int64

	mu             sync.Mutex
	n              int
	bytes          int64
	untrustedN     int
	untrustedBytes int64
	perDest        map[string]int
}

// destination is the scheme, host and port a callback base URL posts to.
func destination(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return base
	}
	return u.Scheme + "://" + strings.ToLower(u.Host)
}

// reserve counts a result of size bytes bound for base as pending, or
// says why it cannot be (the bounds are reached). trusted is true for
// CALLBACK_URL. The first result of each kind always fits, whatever its size.
func (b *deliveryBudget) reserve(base string, trusted bool, size int64) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	maxN, maxBytes := b.maxN, b.maxBytes
	if b.n >= maxN || b.n > 0 && b.bytes+size > maxBytes {
		return fmt.Sprintf("not attempted: %d callbacks are already pending, %d of them to request-chosen callback_url destinations (at most %d, and %d bytes of results): the receivers are not taking results",
			b.n, b.untrustedN, maxN, maxBytes), false
	}
	if !trusted {
		dest := destination(base)
		shareN, shareBytes, perDest := max(maxN*3/4, 1), maxBytes*3/4, max(maxN/4, 1)
		if b.perDest[dest] >= perDest {
			return fmt.Sprintf("not attempted: %d callbacks to %s are already pending (at most %d per request-chosen callback_url destination): that receiver is not taking results",
				b.perDest[dest], dest, perDest), false
		}
		if b.untrustedN >= shareN || b.untrustedN > 0 && b.untrustedBytes+size > shareBytes {
			return fmt.Sprintf("not attempted: %d callbacks to request-chosen callback_url destinations are already pending (at most %d, and %d bytes of results; the rest of the budget is kept for CALLBACK_URL)",
				b.untrustedN, shareN, shareBytes), false
		}
		if b.perDest == nil {
			b.perDest = map[string]int{}
		}
		b.perDest[dest]++
		b.untrustedN++
		b.untrustedBytes += size
	}
	b.n++
	b.bytes += size
	return "", true
}

// release ends what reserve counted.
func (b *deliveryBudget) release(base string, trusted bool, size int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n--
	b.bytes -= size
	if !trusted {
		dest := destination(base)
		if b.perDest[dest]--; b.perDest[dest] <= 0 {
			delete(b.perDest, dest)
		}
		b.untrustedN--
		b.untrustedBytes -= size
	}
}

// pendingDeliveries returns how many results wait for their callback.
func (b *deliveryBudget) pendingDeliveries() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}
