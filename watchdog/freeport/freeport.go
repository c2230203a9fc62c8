// Package freeport picks TCP ports for a process that binds its port later
// (a runtime, a watchdog in another process), in tests and in the emulator.
//
// A port taken with Listen(":0") and closed again is a poor choice for
// that: the kernel hands the same ephemeral ports to the next Listen(":0")
// and to outgoing connections, so with tests running in parallel the
// process could find its port taken, or a readiness probe could reach
// another test's server. Ports here come from below Linux's ephemeral range
// (32768-60999 by default), where the kernel allocates nothing by itself.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// Low and High bound the ports handed out: [Low, High).
const Low, High = 20000, 32768

// Pick returns a port in [Low, High), chosen at random, that is free on
// every address at the time of the call.
func Pick() (int, error) {
	return pick(func(int) bool { return true })
}

// Pool hands out ports like Pick, never the same one twice. The zero
// value is ready to use; it is safe for concurrent use.
type Pool struct {
	mu    sync.Mutex
	given map[int]bool
}

// Take returns a port that Pick could return and that p has not handed out
// before.
func (p *Pool) Take() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	port, err := pick(func(port int) bool { return !p.given[port] })
	if err != nil {
		return 0, err
	}
	if p.given == nil {
		p.given = map[int]bool{}
	}
	p.given[port] = true
	return port, nil
}

func pick(ok func(int) bool) (int, error) {
	start := rand.IntN(High - Low)
	for i := range High - Low {
		port := Low + (start+i)%(High-Low)
		if !ok(port) {
			continue
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free TCP port from %d to %d: too many listeners on this machine", Low, High-1)
}
