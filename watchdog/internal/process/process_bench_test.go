package process

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// A process per invocation (STDIO, FILE): spawn with a payload on stdin
// and stdout captured, wait, finish; with one P, as the watchdog runs, and
// with two for comparison.

func benchmarkSpawn(b *testing.B, procs int) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
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

func BenchmarkSpawn(b *testing.B)      { benchmarkSpawn(b, 1) }
func BenchmarkSpawnTwoPs(b *testing.B) { benchmarkSpawn(b, 2) }
