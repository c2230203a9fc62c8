// Command handler is the nanofaas go-binary example, STDIO mode: one JSON
// document on stdin, one on stdout.
//
// The payload must be a JSON object whose field "input" is a string. The
// result is the same object with "input" uppercased (ASCII letters only, as
// jq's ascii_upcase, so every example runtime answers alike); every other
// field is echoed byte for byte, in its original order. Anything else is a
// function error: a message on stderr, exit code 1.
//
// Built static (CGO_ENABLED=0) so the image can be FROM scratch.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// member is one top-level field of the payload, kept raw so that numbers,
// escapes and key order are echoed exactly as received.
type member struct {
	key   string
	value json.RawMessage
}

func jsonType(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

// parseObject reads exactly one JSON value from data and returns its
// members when it is an object.
func parseObject(data []byte) ([]member, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("stdin is empty, expected one JSON object")
	}
	var whole json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&whole); err != nil {
		return nil, fmt.Errorf("stdin is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("stdin is not valid JSON: more than one JSON document")
	}
	if t := jsonType(whole); t != "object" {
		return nil, fmt.Errorf("payload must be a JSON object, got %s", t)
	}

	dec = json.NewDecoder(bytes.NewReader(whole))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // '{'
		return nil, err
	}
	var members []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
		members = append(members, member{key: key, value: value})
	}
	return members, nil
}

// writeString writes s as a JSON string, leaving <, > and & unescaped.
func writeString(out *bytes.Buffer, s string) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	out.Truncate(out.Len() - 1) // Encode appends a newline
}

// handle applies the demo function and returns the result document.
func handle(data []byte) ([]byte, error) {
	members, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	inputAt := -1
	for i, m := range members {
		if m.key == "input" {
			inputAt = i // the last one wins, as in every other JSON parser
		}
	}
	if inputAt < 0 {
		return nil, errors.New(`field "input" must be a string, got nothing`)
	}
	var input string
	if t := jsonType(members[inputAt].value); t != "string" {
		return nil, fmt.Errorf(`field "input" must be a string, got %s`, t)
	}
	if err := json.Unmarshal(members[inputAt].value, &input); err != nil {
		return nil, fmt.Errorf(`field "input": %v`, err)
	}

	var out bytes.Buffer
	out.WriteByte('{')
	written := 0
	for i, m := range members {
		if m.key == "input" && i != inputAt {
			continue // a duplicate "input": the result has one
		}
		if written > 0 {
			out.WriteByte(',')
		}
		written++
		writeString(&out, m.key)
		out.WriteByte(':')
		if i == inputAt {
			writeString(&out, asciiUpper(input))
		} else {
			out.Write(m.value)
		}
	}
	out.WriteString("}\n")
	return out.Bytes(), nil
}

func main() {
	data, err := io.ReadAll(bufio.NewReader(os.Stdin))
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: cannot read stdin: %v\n", err)
		os.Exit(1)
	}
	result, err := handle(data)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(result); err != nil {
		fmt.Fprintf(os.Stderr, "error: cannot write stdout: %v\n", err)
		os.Exit(1)
	}
}
