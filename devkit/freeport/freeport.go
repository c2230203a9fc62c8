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

// given holds the ports Pick has returned in this process. It is
// process-wide on purpose, like the kernel's own table of ports: two
// callers that each pick a port (a watchdog's and its runtime's, say) must
// not get the same one before either is bound.
var given = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Pick returns a port in [Low, High), chosen at random, that is free on
// every address at the time of the call and that Pick has not returned
// before in this process. Once every free port has been returned, it starts
// over. It is safe for concurrent use.
func Pick() (int, error) {
	given.Lock()
	defer given.Unlock()
	port, ok := pick(func(port int) bool { return !given.ports[port] })
	if !ok {
		clear(given.ports)
		port, ok = pick(func(int) bool { return true })
	}
	if !ok {
		return 0, fmt.Errorf("no free TCP port from %d to %d: too many listeners on this machine", Low, High-1)
	}
	given.ports[port] = true
	return port, nil
}

// pick returns a free port that wanted accepts, trying them all from a
// random start.
func pick(wanted func(int) bool) (int, bool) {
	start := rand.IntN(High - Low)
	for i := range High - Low {
		port := Low + (start+i)%(High-Low)
		if !wanted(port) {
			continue
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, true
	}
	return 0, false
}
