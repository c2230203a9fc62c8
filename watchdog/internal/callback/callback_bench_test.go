package callback

import "testing"

// The callback URL is built once per invocation that has one.

func BenchmarkURL(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = URL("http://control-plane:8080/v1/internal/executions", "exec-123")
	}
}

func BenchmarkURLAlreadyComplete(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = URL("http://control-plane:8080/v1/internal/executions/exec-123:complete", "exec-123")
	}
}

func BenchmarkURLEscapedID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = URL("http://control-plane:8080/v1/internal/executions/", "exec 123/ü")
	}
}
