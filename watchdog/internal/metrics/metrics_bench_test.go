package metrics

import (
	"io"
	"testing"
	"time"
)

// Recording an invocation happens on every call; a scrape, every few seconds.

func BenchmarkRecordInvocation(b *testing.B) {
	m := New("fn", "WARM", nil)
	b.ReportAllocs()
	for b.Loop() {
		m.Started()
		m.Finished(true, false, 300*time.Microsecond)
	}
}

func BenchmarkWritePrometheus(b *testing.B) {
	m := New("fn", "WARM", func() uint64 { return 0 })
	m.Finished(true, false, 3*time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		m.WritePrometheus(io.Discard)
	}
}
