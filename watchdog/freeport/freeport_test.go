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

func TestPoolNeverHandsOutAPortTwice(t *testing.T) {
	var p Pool
	seen := map[int]bool{}
	for range 500 {
		port, err := p.Take()
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
	}
}

func TestPickSkipsABusyPort(t *testing.T) {
	var p Pool
	// Hold every port but one of a pool's choices by marking them given,
	// and listen on the last one: nothing is left to hand out.
	busy, err := Pick()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(busy))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p.given = map[int]bool{}
	for port := Low; port < High; port++ {
		if port != busy {
			p.given[port] = true
		}
	}
	if port, err := p.Take(); err == nil {
		t.Fatalf("Take returned %d although the only candidate is in use", port)
	}
}
