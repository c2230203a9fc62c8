package result

import (
	"encoding/json"
	"testing"
)

// The result body is encoded once per invocation: for the callback, and
// for the answer of an envelope-form request or of a failure.

func BenchmarkMarshalSuccess(b *testing.B) {
	r := Success(json.RawMessage(`{"input":"hello, watchdog","n":42,"tags":["a","b"]}`)).WithExitCode(0)
	r.DurationMs = 3
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Marshal()
	}
}

func BenchmarkMarshalFailure(b *testing.B) {
	r := Failure(Timeout, "Function exceeded timeout of %dms", 30000)
	r.DurationMs = 30004
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Marshal()
	}
}
