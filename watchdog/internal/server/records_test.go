package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// record is one JSON log record of the watchdog, decoded.
type record map[string]any

// records decodes the JSON log records in logs, one object a line; lines
// that are not JSON objects are skipped, so checks hold whatever else the
// log carries.
func records(t testing.TB, logs string) []record {
	t.Helper()
	var recs []record
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec record
		if json.Unmarshal([]byte(line), &rec) == nil {
			recs = append(recs, rec)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("cannot read the log records: %v", err)
	}
	return recs
}

// matching returns the records that have every attribute of want. A key
// with dots (result.output.i) names an attribute of a nested object. A
// value is compared as text (strings as they are, numbers and booleans as
// JSON writes them, so 3 matches 3 and true matches true); a
// *regexp.Regexp value matches the attribute's text instead.
func matching(recs []record, want map[string]any) []record {
	var out []record
	for _, rec := range recs {
		if rec.has(want) {
			out = append(out, rec)
		}
	}
	return out
}

// hasRecord reports whether a record has every attribute of want (see
// matching).
func hasRecord(recs []record, want map[string]any) bool {
	return len(matching(recs, want)) > 0
}

func (r record) has(want map[string]any) bool {
	for key, w := range want {
		v, ok := lookupAttr(r, key)
		if !ok {
			return false
		}
		text := attrText(v)
		if re, isRE := w.(*regexp.Regexp); isRE {
			if !re.MatchString(text) {
				return false
			}
		} else if text != attrText(w) {
			return false
		}
	}
	return true
}

func lookupAttr(rec map[string]any, key string) (any, bool) {
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
	return lookupAttr(inner, rest)
}

func attrText(v any) string {
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

func TestRecordsMatchByAttribute(t *testing.T) {
	recs := records(t, "not json\n"+
		`{"level":"ERROR","msg":"callback undelivered","attempts":3,"result":{"success":true,"output":{"i":59}}}`+"\n"+
		`{"msg":"stopped"}`+"\n")
	for _, tc := range []struct {
		want map[string]any
		n    int
	}{
		{map[string]any{"msg": "callback undelivered", "attempts": 3, "result.success": true, "result.output.i": 59}, 1},
		{map[string]any{"result.output": map[string]any{"i": 59}}, 1},
		{map[string]any{"msg": regexp.MustCompile(`^(stopped|callback undelivered)$`)}, 2},
		{map[string]any{"msg": "callback undelivered", "attempts": 2}, 0},
		{map[string]any{"msg": "stopped", "level": "INFO"}, 0},
		{map[string]any{"result.output.j": 59}, 0},
	} {
		if n := len(matching(recs, tc.want)); n != tc.n {
			t.Errorf("%v matches %d records, want %d", tc.want, n, tc.n)
		}
	}
}
