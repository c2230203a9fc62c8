package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"nanofaas.dev/watchdog/result"
)

// FuzzCheckOutput checks the function-output rule on any bytes a function
// may print:
//   - accepted output is exactly one JSON document in valid UTF-8: the
//     whole output, not a part of it, and with nothing around it but JSON
//     whitespace; what is kept is that document, byte for byte;
//   - the result built from it encodes to valid JSON whose output decodes
//     to the same value;
//   - refused output is a FUNCTION_ERROR whose message is valid UTF-8 and
//     quotes at most a bounded excerpt, so a huge output cannot make a huge
//     message.
func FuzzCheckOutput(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, " \n{\"a\":1}\r\n\t", `{"a":1}{"b":2}`, `{"a":1} x`, "hello world", "",
		" \t ", "caf\xe9", `"\ud800"`, "\u00a0{}\u00a0", "\ufeff{}", "\x85[]", `[1,2,3]`, `null`,
		`"<html>&"`, "\v{}\f", strings.Repeat("[", 200) + strings.Repeat("]", 200),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		doc, bad := checkOutput("stdout", out)
		if bad != nil {
			if bad.ErrorCode() != result.FunctionError {
				t.Fatalf("refusal code %q", bad.ErrorCode())
			}
			if !utf8.ValidString(bad.Error.Message) || len(bad.Error.Message) > 1000 {
				t.Fatalf("refusal message is %d bytes or not UTF-8: %q", len(bad.Error.Message), bad.Error.Message)
			}
			if len(out) > 0 && utf8.Valid(out) && json.Valid(out) {
				t.Fatalf("refused %q, which is one JSON document in UTF-8: %s", out, bad.Error.Message)
			}
			return
		}
		if !utf8.Valid(out) || !json.Valid(out) {
			t.Fatalf("accepted %q, which is not exactly one JSON document in UTF-8", out)
		}
		if want := bytes.Trim(out, " \t\r\n"); !bytes.Equal(doc, want) {
			t.Fatalf("accepted %q as %q, want %q", out, doc, want)
		}
		body := result.Success(doc).Marshal()
		var back struct {
			Success bool            `json:"success"`
			Output  json.RawMessage `json:"output"`
		}
		if err := json.Unmarshal(body, &back); err != nil || !back.Success {
			t.Fatalf("result body %q does not decode: %v", body, err)
		}
		// Numbers are compared as written: one beyond float64 must come
		// back digit for digit too.
		a, errA := decodeExact(doc)
		b, errB := decodeExact(back.Output)
		if errA != nil || errB != nil {
			t.Fatalf("output %q did not survive the result body %q (%v, %v)", doc, body, errA, errB)
		}
		x, _ := json.Marshal(a)
		y, _ := json.Marshal(b)
		if !bytes.Equal(x, y) {
			t.Fatalf("output %s came back as %s", x, y)
		}
	})
}

// decodeExact decodes one JSON document, keeping numbers as written.
func decodeExact(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}
