package supervise

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestTuneRuntimeUnlessTheEnvironmentSaysOtherwise(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
	})

	t.Setenv("GOMAXPROCS", "")
	t.Setenv("GOGC", "")
	runtime.GOMAXPROCS(2)
	tuneRuntime()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS = %d, want 1", got)
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GOGC = %d, want %d", got, gcPercent)
	}

	t.Setenv("GOMAXPROCS", "2")
	t.Setenv("GOGC", "100")
	runtime.GOMAXPROCS(2)
	tuneRuntime()
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("with GOMAXPROCS=2 in the environment, GOMAXPROCS = %d", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC=100 in the environment, GOGC = %d", got)
	}
}
