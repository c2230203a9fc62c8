package process

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit is how a process ended.
type Exit struct {
	// Code is the exit status, or -1 when a signal killed the process.
	Code int
	// Signal is the signal that killed the process, or 0.
	Signal syscall.Signal
	// MaxRSSKB is the peak resident set size of the process and the
	// descendants it waited for, in KiB, as the kernel measured it.
	MaxRSSKB int64
}

// Success reports whether the process exited with status 0.
func (e Exit) Success() bool { return e.Signal == 0 && e.Code == 0 }

// String says how the process ended, e.g. "exit code 3" or "signal SIGKILL".
func (e Exit) String() string {
	if e.Signal != 0 {
		return "signal " + unix.SignalName(e.Signal)
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

func exitFromStatus(ws syscall.WaitStatus, ru *syscall.Rusage) Exit {
	e := Exit{Code: ws.ExitStatus()}
	if ws.Signaled() {
		e.Code = -1
		e.Signal = ws.Signal()
	}
	if ru != nil {
		e.MaxRSSKB = ru.Maxrss
	}
	return e
}
