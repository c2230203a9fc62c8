package process

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// A process per invocation (STDIO, FILE): spawn, wait, finish. With one P,
// as the watchdog runs; -bench Spawn compares waiting through a pidfd in
// the poller with waiting in a blocking wait4.

func benchmarkSpawn(b *testing.B, pidfd bool) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer func(old bool) { usePidfd = old }(usePidfd)
	usePidfd = pidfd
	m := NewManager(nil, false)
	defer m.Close()
	env := os.Environ()
	b.ReportAllocs()
	for b.Loop() {
		c, err := m.StartChild(Options{Argv: []string{"/bin/true"}, Env: env, Stdin: []byte("{}"), CaptureStdout: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		<-c.Done()
		c.Finish(time.Second)
	}
}

func BenchmarkSpawnPidfd(b *testing.B) { benchmarkSpawn(b, true) }
func BenchmarkSpawnWait4(b *testing.B) { benchmarkSpawn(b, false) }
