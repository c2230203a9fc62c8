package supervise

import (
	"os"
	"runtime"
	"runtime/debug"
)

// gcPercent is the watchdog's GOGC. The watchdog keeps well under a
// megabyte live; with Go's default (100) the heap may grow to 4 MB before
// the first collection, which is most of the watchdog's memory after a few
// hundred invocations. At 25 the heap stays within about a megabyte; a
// collection of so small a heap takes a fraction of a millisecond of CPU,
// about once every hundred warm invocations.
const gcPercent = 25

// tuneRuntime sizes the Go runtime for what the watchdog is: a supervisor
// that runs one invocation at a time and mostly waits. Settings the
// operator gave in the environment (GOMAXPROCS, GOGC) win.
//
// One P: every invocation is a chain of goroutine handoffs (the server's
// connection, the runtime client's read and write loops, the child's
// pipes). With more than one P, each handoff to an idle P wakes another
// OS thread (a futex call and a cross-CPU wake-up, tens of microseconds on
// a VM); with one they are a run-queue operation. Nothing in the watchdog
// needs two CPUs at once, and the function keeps the other CPUs to itself.
func tuneRuntime() {
	// Empty is unset, for the Go runtime too.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
