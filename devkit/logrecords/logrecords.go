// Package logrecords reads the watchdog's JSON log records (one object a
// line) and matches them by attribute, so that a test's check holds
// whatever the key order or the other attributes of a record: the one
// implementation behind the testscript command logrecord and the Go tests'
// log checks.
package logrecords

import (
	"bufio"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Record is one decoded log record.
type Record map[string]any

// Parse decodes the records in text, one JSON object a line; lines that are
// not JSON objects (a function's raw output, text logs) are skipped.
func Parse(text string) ([]Record, error) {
	var recs []Record
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec Record
		if json.Unmarshal([]byte(line), &rec) == nil {
			recs = append(recs, rec)
		}
	}
	if err := sc.Err(); err != nil {
		return recs, fmt.Errorf("cannot read the log records: %w", err)
	}
	return recs, nil
}

// Matcher is one attribute a record must have: its text equal to Value, or
// matching Re when Re is not nil. A Key with dots (result.error.code)
// names an attribute of a nested object.
type Matcher struct {
	Key   string
	Value string
	Re    *regexp.Regexp
}

// ParseMatcher reads KEY=VALUE or KEY~REGEXP.
func ParseMatcher(arg string) (Matcher, error) {
	i := strings.IndexAny(arg, "=~")
	if i <= 0 {
		return Matcher{}, fmt.Errorf("%q is neither KEY=VALUE nor KEY~REGEXP", arg)
	}
	m := Matcher{Key: arg[:i], Value: arg[i+1:]}
	if arg[i] == '~' {
		re, err := regexp.Compile(m.Value)
		if err != nil {
			return Matcher{}, fmt.Errorf("%s: %w", arg, err)
		}
		m.Re = re
	}
	return m, nil
}

// Want turns attributes into matchers: a *regexp.Regexp value matches the
// attribute's text, any other value is compared as text (see Text).
func Want(attrs map[string]any) []Matcher {
	ms := make([]Matcher, 0, len(attrs))
	for k, v := range attrs {
		if re, ok := v.(*regexp.Regexp); ok {
			ms = append(ms, Matcher{Key: k, Re: re})
		} else {
			ms = append(ms, Matcher{Key: k, Value: Text(v)})
		}
	}
	return ms
}

// Matches reports whether r has every attribute of ms.
func (r Record) Matches(ms []Matcher) bool {
	for _, m := range ms {
		v, ok := Lookup(r, m.Key)
		if !ok {
			return false
		}
		text := Text(v)
		if m.Re != nil {
			if !m.Re.MatchString(text) {
				return false
			}
		} else if text != m.Value {
			return false
		}
	}
	return true
}

// Matching returns the records that match every one of ms.
func Matching(recs []Record, ms []Matcher) []Record {
	var out []Record
	for _, r := range recs {
		if r.Matches(ms) {
			out = append(out, r)
		}
	}
	return out
}

// Lookup finds key in rec; a dotted key descends into nested objects when
// no attribute has the whole key as its name.
func Lookup(rec map[string]any, key string) (any, bool) {
	if v, ok := rec[key]; ok {
		return v, true
	}
	head, rest, dotted := strings.Cut(key, ".")
	if !dotted {
		return nil, false
	}
	inner, ok := rec[head].(map[string]any)
	if !ok {
		return nil, false
	}
	return Lookup(inner, rest)
}

// Text is an attribute's value as text: a string as it is, a number as
// JSON writes it (integers without an exponent), a boolean as true or
// false, anything else as its JSON.
func Text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case int, int64, uint64, bool:
		return fmt.Sprint(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}
