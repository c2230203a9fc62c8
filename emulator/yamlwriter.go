package emulator

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A tiny YAML writer for the Kubernetes manifests: ordered maps, lists and
// scalars, every string double-quoted with YAML's escapes, so that no user
// value (a name, an env value, a command) can change the document's
// structure or be read as another type. It keeps the emulator free of a
// YAML library; deploy/ decodes its output strictly to prove it.

// ymap is a mapping whose keys are written in order.
type ymap []ykv

// ykv is one key of a mapping, with an optional comment written above it.
type ykv struct {
	key     string
	value   any // string, int, int64, bool, ymap or ylist
	comment string
}

// ylist is a sequence.
type ylist []any

// plainKey matches the keys written without quotes.
var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./-]*$`)

// yamlKeywords are plain words YAML 1.1 reads as something other than a
// string; a key equal to one of them is quoted.
var yamlKeywords = map[string]bool{
	"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true,
	"true": true, "false": true, "null": true,
}

// writeDoc writes one YAML document (a mapping).
func writeDoc(b *strings.Builder, m ymap) {
	writeMap(b, m, 0, "")
}

// writeMap writes m at indent; first, when not empty, replaces the indent of
// the first key's line (the "- " of a list item).
func writeMap(b *strings.Builder, m ymap, indent int, first string) {
	pad := strings.Repeat(" ", indent)
	for i, kv := range m {
		if kv.comment != "" {
			for _, line := range strings.Split(kv.comment, "\n") {
				if i == 0 && first != "" {
					b.WriteString(first[:len(first)-2])
				} else {
					b.WriteString(pad)
				}
				b.WriteString("# " + line + "\n")
			}
		}
		if i == 0 && first != "" {
			b.WriteString(first)
		} else {
			b.WriteString(pad)
		}
		b.WriteString(yamlKey(kv.key) + ":")
		writeValue(b, kv.value, indent)
	}
}

// writeValue writes what follows "key:" for a value whose key is at indent.
func writeValue(b *strings.Builder, v any, indent int) {
	switch v := v.(type) {
	case ymap:
		if len(v) == 0 {
			b.WriteString(" {}\n")
			return
		}
		b.WriteString("\n")
		writeMap(b, v, indent+2, "")
	case ylist:
		if len(v) == 0 {
			b.WriteString(" []\n")
			return
		}
		b.WriteString("\n")
		writeList(b, v, indent+2)
	default:
		b.WriteString(" " + yamlScalar(v) + "\n")
	}
}

// writeList writes the items of l, each "- " at indent.
func writeList(b *strings.Builder, l ylist, indent int) {
	pad := strings.Repeat(" ", indent)
	for _, item := range l {
		switch item := item.(type) {
		case ymap:
			if len(item) == 0 {
				b.WriteString(pad + "- {}\n")
				continue
			}
			writeMap(b, item, indent+2, pad+"- ")
		case ylist:
			if len(item) == 0 {
				b.WriteString(pad + "- []\n")
				continue
			}
			b.WriteString(pad + "-\n")
			writeList(b, item, indent+2)
		default:
			b.WriteString(pad + "- " + yamlScalar(item) + "\n")
		}
	}
}

func yamlKey(k string) string {
	if plainKey.MatchString(k) && !yamlKeywords[strings.ToLower(k)] {
		return k
	}
	return yamlQuote(k)
}

func yamlScalar(v any) string {
	switch v := v.(type) {
	case string:
		return yamlQuote(v)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	}
	panic(fmt.Sprintf("yaml writer: unsupported value %T", v))
}

// yamlQuote writes s as a YAML double-quoted scalar. Printable characters
// stay as they are; quotes, backslashes, control characters, the C1 range,
// YAML's extra line breaks (U+0085, U+2028, U+2029), the byte order mark
// and non-characters are escaped, so any UTF-8 string round-trips exactly.
// s must be valid UTF-8 (checked by the caller).
func yamlQuote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 ||
			r == 0xfeff || r == 0xfffe || r == 0xffff || r == utf8.RuneError:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
