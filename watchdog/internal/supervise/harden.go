package supervise

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// protectSecrets makes the watchdog's memory and /proc files (environ, mem,
// maps, fds...) unreadable to processes of the same user, the function
// included: PR_SET_DUMPABLE 0 makes /proc/<watchdog pid>/* owned by root
// and refuses ptrace. Only the watchdog itself and root (CAP_SYS_PTRACE)
// can read them. The function is not affected: execve of a program the
// user may read makes a process dumpable again.
//
// It also removes WARM_AUTH_TOKEN from the watchdog's own environment
// variables (os.Environ), so that nothing started later inherits it; the
// initial copy of the environment stays in the process's memory, which is
// why PR_SET_DUMPABLE is what protects it.
func protectSecrets() error {
	_ = os.Unsetenv("WARM_AUTH_TOKEN")
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("cannot make the watchdog's memory unreadable to the function (prctl PR_SET_DUMPABLE): %w", err)
	}
	return nil
}
