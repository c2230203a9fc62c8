package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPickIsFreeAndBelowTheEphemeralRange(t *testing.T) {
	port, err := Pick()
	if err != nil {
		t.Fatal(err)
	}
	if port < Low || port >= High {
		t.Fatalf("port %d outside [%d, %d)", port, Low, High)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("the port picked cannot be bound: %v", err)
	}
	ln.Close()
}

func TestPickNeverReturnsAPortTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 500 {
		port, err := Pick()
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d returned twice", port)
		}
		seen[port] = true
	}
}

// withGiven runs f with every port in [Low, High) but except marked as
// already returned, then forgets them all.
func withGiven(except int, f func()) {
	given.Lock()
	for port := Low; port < High; port++ {
		if port != except {
			given.ports[port] = true
		}
	}
	given.Unlock()
	defer func() {
		given.Lock()
		clear(given.ports)
		given.Unlock()
	}()
	f()
}

func TestPickSkipsABusyPort(t *testing.T) {
	busy, err := Pick()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(busy))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The only port not yet returned is in use: Pick starts over, and
	// still does not return the busy one.
	withGiven(busy, func() {
		port, err := Pick()
		if err != nil {
			t.Fatal(err)
		}
		if port == busy {
			t.Fatalf("Pick returned %d, which is in use", port)
		}
	})
}

func TestPickStartsOverOnceEveryPortWasReturned(t *testing.T) {
	withGiven(-1, func() {
		if _, err := Pick(); err != nil {
			t.Fatalf("with every port returned once, Pick failed instead of starting over: %v", err)
		}
		given.Lock()
		n := len(given.ports)
		given.Unlock()
		if n != 1 {
			t.Errorf("%d ports remembered after starting over, want 1", n)
		}
	})
}
