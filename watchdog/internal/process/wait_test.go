package process

import (
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Waiting for a process does not hold the only P: with GOMAXPROCS=1 (the
// watchdog's setting) other goroutines keep running while a child lives.
func TestWaitingForAChildDoesNotStallOtherGoroutines(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	m := newManager(t)
	c, err := m.StartChild(Options{Argv: []string{"sleep", "0.5"}, Env: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Finish(time.Second)
	// Measure for the child's whole life (0.5 s), so that most samples are
	// taken while the reaper waits for it, whenever that wait begins.
	var worst time.Duration
	for samples := 0; samples < 20 || !c.Exited(); samples++ {
		start := time.Now()
		done := make(chan struct{})
		go func() { close(done) }()
		<-done
		worst = max(worst, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
	// A wait that held the only P would stall a goroutine for the rest of
	// the child's life (hundreds of ms); a busy machine delays one by a few
	// ms to a few tens.
	if worst > 150*time.Millisecond {
		t.Errorf("a goroutine waited %v to run while a child was waited for", worst)
	}
	<-c.Done()
	if e := c.Exit(); !e.Success() {
		t.Errorf("exit = %v, want exit code 0", e)
	}
}

// Many short children, started at once, are all reaped with their own
// exit status.
func TestManyChildrenAreReapedWithTheirStatus(t *testing.T) {
	m := newManager(t)
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			code := i % 4
			c, err := m.StartChild(Options{Argv: []string{"sh", "-c", "exit " + string(rune('0'+code))}, Env: os.Environ()})
			if err != nil {
				t.Error(err)
				return
			}
			<-c.Done()
			c.Finish(time.Second)
			if e := c.Exit(); e.Code != code || e.Signal != 0 {
				t.Errorf("child %d: exit = %v, want exit code %d", i, e, code)
			}
		})
	}
	wg.Wait()
	m.mu.Lock()
	left := len(m.procs)
	m.mu.Unlock()
	if left != 0 {
		t.Errorf("%d processes still tracked after all were reaped", left)
	}
}
