package server

import (
	"bytes"
	"encoding/json"
	"fmt"
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
// and no key may appear twice; other keys are ignored, as before. Once the
// keys are known to be exact and unique, encoding/json's reading of the
// body is the exact one. A *keyError says what is wrong with the keys; any
// other error, that body is not a JSON object.
func decodeEnvelope(body []byte, env *envelope) error {
	if err := json.Unmarshal(body, env); err != nil {
		return err
	}
	if msg := checkKeys(body); msg != "" {
		*env = envelope{}
		return &keyError{msg}
	}
	return nil
}

// checkKeys walks the keys of the top-level object of body, a valid JSON
// document, skipping the values (the payload may be megabytes: it is
// scanned, not decoded), and says what is wrong with them, or "".
func checkKeys(body []byte) string {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return "" // null: no keys
	}
	var small [8][]byte
	seen := small[:0]
	var many map[string]bool
	i++
	for {
		i = skipSpace(body, i)
		if body[i] == '}' {
			return ""
		}
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
		end := skipString(body, i)
		raw := body[i:end]
		key, escaped := raw[1:len(raw)-1], false
		if bytes.IndexByte(key, '\\') >= 0 {
			var s string
			_ = json.Unmarshal(raw, &s)
			key, escaped = []byte(s), true
		}
		if msg := checkKey(key, escaped, raw); msg != "" {
			return msg
		}
		dup := false
		if many != nil {
			dup = many[string(key)]
			many[string(key)] = true
		} else {
			for _, k := range seen {
				dup = dup || bytes.Equal(k, key)
			}
			if len(seen) < cap(seen) {
				seen = append(seen, key)
			} else {
				many = make(map[string]bool, 2*len(seen))
				for _, k := range seen {
					many[string(k)] = true
				}
				many[string(key)] = true
			}
		}
		if dup {
			return fmt.Sprintf("key %q appears twice in the envelope: send each key once", key)
		}
		i = skipSpace(body, end)
		i = skipValue(body, skipSpace(body, i+1)) // past the colon
	}
}

// envelopeKeyBytes are envelopeKeys as bytes, for comparisons.
var envelopeKeyBytes = func() (out [len(envelopeKeys)][]byte) {
	for i, k := range envelopeKeys {
		out[i] = []byte(k)
	}
	return out
}()

// checkKey says what is wrong with one key, or "".
func checkKey(key []byte, escaped bool, raw []byte) string {
	for i, k := range envelopeKeyBytes {
		switch {
		case bytes.Equal(key, k) && escaped:
			return fmt.Sprintf("key %q is spelled with escapes (%s): write the keys of the envelope literally", key, raw)
		case bytes.Equal(key, k):
			return ""
		case bytes.EqualFold(key, k):
			return fmt.Sprintf("key %q is not a key of the envelope (did you mean %q? keys are matched exactly: %s)", key, envelopeKeys[i], strings.Join(envelopeKeys[:], ", "))
		}
	}
	return ""
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i = skipString(b, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}
