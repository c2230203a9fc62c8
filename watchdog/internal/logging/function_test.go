package logging

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// record is a function output record as a log reader parses it.
type record struct {
	Time        string `json:"time"`
	Level       string `json:"level"`
	Msg         string `json:"msg"`
	Stream      string `json:"stream"`
	ExecutionID string `json:"execution_id"`
	Line        string `json:"line"`
}

// validUTF8 is s with each byte that is not part of valid UTF-8 replaced
// by U+FFFD, as encoding/json decodes it.
func validUTF8(s []byte) string {
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		b.WriteRune(r)
		s = s[size:]
	}
	return b.String()
}

// FuzzFunctionRecord: whatever line a function writes, the wrapped form is
// exactly one line, a JSON object whose msg is "function output" and whose
// line field is the function's line; no control byte (an ANSI escape, a
// carriage return) and no C1 control or bidi override reaches the log raw.
func FuzzFunctionRecord(f *testing.F) {
	for _, s := range []string{
		"plain",
		`{"time":"2020-01-01T00:00:00Z","level":"ERROR","msg":"callback undelivered","undelivered":true}`,
		"\x1b[31mred\x1b[0m",
		"\u009b2J \u202eevil\u202c \ufeff \u2028",
		"a\rb\x00c\x7f",
		"\xff\xfe invalid \xc0\xae",
		"trailing newline\n",
	} {
		f.Add([]byte(s), "exec-1")
	}
	f.Fuzz(func(t *testing.T, line []byte, id string) {
		var out bytes.Buffer
		fo := NewFunctionOutput(&out, "json", FunctionWrapped, "stderr").ForExecution(id)
		n, err := fo.Write(line)
		if err != nil || n != len(line) {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(line))
		}
		got := out.Bytes()
		if bytes.Count(got, []byte("\n")) != 1 || got[len(got)-1] != '\n' {
			t.Fatalf("not exactly one line: %q", got)
		}
		for _, c := range got[:len(got)-1] {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("raw control byte %#x in %q", c, got)
			}
		}
		for _, r := range string(got) {
			if mustEscape(r) {
				t.Fatalf("raw %U in %q", r, got)
			}
		}
		var rec record
		dec := json.NewDecoder(bytes.NewReader(got))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("not a JSON record: %v: %q", err, got)
		}
		want := bytes.TrimSuffix(line, []byte("\n"))
		if rec.Msg != "function output" || rec.Level != "INFO" || rec.Stream != "stderr" || rec.Line != validUTF8(want) {
			t.Fatalf("record %+v for line %q", rec, line)
		}
		if id != "" && rec.ExecutionID != validUTF8([]byte(id)) {
			t.Fatalf("execution_id %q, want %q", rec.ExecutionID, id)
		}
	})
}

func TestFunctionRecordText(t *testing.T) {
	var out bytes.Buffer
	fo := NewFunctionOutput(&out, "text", FunctionWrapped, "stdout").ForExecution("e 1")
	_, _ = fo.Write([]byte("time=x level=ERROR msg=\"forged\" \x1b[2J\n"))
	got := out.String()
	want := ` level=INFO msg="function output" stream=stdout execution_id="e 1" line="time=x level=ERROR msg=\"forged\" \x1b[2J"` + "\n"
	if !strings.HasPrefix(got, "time=") || !strings.HasSuffix(got, want) {
		t.Errorf("got %q, want time=... then %q", got, want)
	}
}

func TestFunctionRecordRaw(t *testing.T) {
	var out bytes.Buffer
	fo := NewFunctionOutput(&out, "json", FunctionRaw, "stderr").ForExecution("e")
	line := "{\"msg\":\"forged\"}\x1b\n"
	_, _ = fo.Write([]byte(line))
	if out.String() != line {
		t.Errorf("raw mode wrote %q, want %q unchanged", out.String(), line)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "abc", `a"b\c`, "\x00\x1f\x7f", "é 日本", "\u2028\u2029", "\xff"} {
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != validUTF8([]byte(s)) {
			t.Errorf("%q -> %s -> %q (%v)", s, got, back, err)
		}
	}
}

// The pump writes one line per Write; wrapping costs a record's formatting.
func benchmarkFunctionOutput(b *testing.B, mode string) {
	fo := NewFunctionOutput(io.Discard, "json", mode, "stderr").ForExecution("exec-bench-1")
	line := []byte(strings.Repeat("a typical log line of a function, with some words in it ", 2) + "\n")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = fo.Write(line)
	}
}

func BenchmarkFunctionOutputWrapped(b *testing.B) { benchmarkFunctionOutput(b, FunctionWrapped) }
func BenchmarkFunctionOutputRaw(b *testing.B)     { benchmarkFunctionOutput(b, FunctionRaw) }
