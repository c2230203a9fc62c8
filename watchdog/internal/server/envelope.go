package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// envelopeKeys are the keys of the envelope, as they must be spelled.
var envelopeKeys = [...]string{"execution_id", "callback_url", "trace_id", "payload", "timeout_ms"}

// keyError is an envelope whose keys are wrong: a key that differs from
// one of envelopeKeys only in case or Unicode folding, a key of the
// envelope spelled with escapes, or a key that appears twice.
type keyError struct{ msg string }

func (e *keyError) Error() string { return e.msg }

// decodeEnvelope decodes body into env, with exact keys: encoding/json
// matches keys case-insensitively, with Unicode folding ("callbac\u212a_url",
// a Kelvin sign, is callback_url to it), and keeps the last of duplicate
// keys, so a gateway that filters the text "callback_url" could be
// bypassed. A key of the envelope must be spelled exactly and literally,
// and no key may appear twice; other keys are ignored, as before. The
// values are decoded as encoding/json decodes them (a null leaves a field
// alone; "payload" keeps its bytes). A *keyError says what is wrong with
// the keys; any other error, that body is not a JSON object.
func decodeEnvelope(body []byte, env *envelope) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return errors.New("unexpected end of JSON input")
		}
		return err
	}
	if tok == nil { // null: an envelope without any field
		return endOfDocument(dec)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("cannot decode %s into an object", describe(tok))
	}
	var seen map[string]bool
	for dec.More() {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string)
		rawKey := body[start:dec.InputOffset()]
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return err
		}
		if seen[key] {
			return &keyError{fmt.Sprintf("key %q appears twice in the envelope: send each key once", key)}
		}
		if seen == nil {
			seen = make(map[string]bool, 8)
		}
		seen[key] = true
		var field any
		switch key {
		case "execution_id":
			field = &env.ExecutionID
		case "callback_url":
			field = &env.CallbackURL
		case "trace_id":
			field = &env.TraceID
		case "payload":
			field = &env.Payload
		case "timeout_ms":
			field = &env.TimeoutMs
		default:
			for _, k := range envelopeKeys {
				if strings.EqualFold(key, k) {
					return &keyError{fmt.Sprintf("key %q is not a key of the envelope (did you mean %q? keys are matched exactly: %s)", key, k, strings.Join(envelopeKeys[:], ", "))}
				}
			}
			continue
		}
		if bytes.IndexByte(rawKey, '\\') >= 0 {
			return &keyError{fmt.Sprintf("key %q is spelled with escapes (%s): write the keys of the envelope literally", key, bytes.TrimLeft(rawKey, " \t\r\n,"))}
		}
		if err := json.Unmarshal(value, field); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	return endOfDocument(dec)
}

// endOfDocument checks that nothing but whitespace follows the document.
func endOfDocument(dec *json.Decoder) error {
	tok, err := dec.Token()
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return err
	default:
		return fmt.Errorf("%s after the envelope: send one JSON object", describe(tok))
	}
}

// describe names a JSON token's kind for a message.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return "null"
	}
}
