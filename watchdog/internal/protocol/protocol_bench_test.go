package protocol

import "testing"

// Every output is checked to be one JSON document before it is answered.

func BenchmarkCheckOutputSmall(b *testing.B) {
	out := []byte(`{"input":"hello, watchdog","n":42,"tags":["a","b"]}` + "\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, bad := checkOutput("stdout", out); bad != nil {
			b.Fatal(bad.Error.Message)
		}
	}
}

func BenchmarkCheckOutput1MB(b *testing.B) {
	out := make([]byte, 0, 1<<20)
	out = append(out, '[')
	for len(out) < 1<<20-64 {
		out = append(out, `{"k":"value","n":12345},`...)
	}
	out = append(out, `{}]`...)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, bad := checkOutput("stdout", out); bad != nil {
			b.Fatal(bad.Error.Message)
		}
	}
}
