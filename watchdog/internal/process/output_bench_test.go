package process

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"nanofaas.dev/watchdog/internal/logging"
	"nanofaas.dev/watchdog/procio"
)

// The stderr pump, 1,000 lines of 100 bytes, into the container log: raw
// (the lines as they are) or wrapped (each a record), through the
// watchdog's non-blocking writer.
func benchmarkPump(b *testing.B, mode string) {
	input := []byte(strings.Repeat(strings.Repeat("w", 99)+"\n", 1000))
	out := logging.NewAsyncWriter(io.Discard, 0)
	defer out.Close(time.Second)
	sink := logging.NewFunctionOutput(out, "json", mode, "stderr").ForExecution("exec-bench")
	var tail procio.Tail
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	for b.Loop() {
		pumpLines(bytes.NewReader(input), sink, &tail)
	}
}

func BenchmarkPumpRaw(b *testing.B)     { benchmarkPump(b, logging.FunctionRaw) }
func BenchmarkPumpWrapped(b *testing.B) { benchmarkPump(b, logging.FunctionWrapped) }
