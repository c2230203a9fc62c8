package scripttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// logrecord [-count N] [-stdout] KEY=VALUE... checks the JSON log records
// (one object a line) on the last command's stderr (or stdout): at least
// one record has every KEY with that VALUE (with -count, exactly N
// records do; with !, none does). A VALUE is compared with the attribute
// as text (strings as they are, numbers and booleans as JSON writes them);
// KEY~REGEXP matches the text against a regular expression instead; a
// dotted KEY (result.error.code) names an attribute of a nested object. Lines
// that are not JSON objects (the function's own output, text logs) are
// skipped. Records are matched by attribute, so a change of key order or
// of an unrelated attribute cannot break a check.
func cmdLogRecord(ts *testscript.TestScript, neg bool, args []string) {
	count := -1
	stream := "stderr"
	rest := parse(ts, "logrecord", args, func(fs *flag.FlagSet) {
		fs.IntVar(&count, "count", -1, "exact number of matching records")
		fs.BoolFunc("stdout", "read stdout instead of stderr", func(string) error { stream = "stdout"; return nil })
	})
	if len(rest) == 0 {
		ts.Fatalf("usage: logrecord [-count N] [-stdout] KEY=VALUE|KEY~REGEXP...")
	}
	matchers := make([]recordMatcher, 0, len(rest))
	for _, a := range rest {
		m, err := newRecordMatcher(a)
		if err != nil {
			ts.Fatalf("logrecord: %v", err)
		}
		matchers = append(matchers, m)
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(ts.ReadFile(stream)))
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var rec map[string]any
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		if matchRecord(rec, matchers) {
			n++
		}
	}
	switch {
	case neg && n > 0:
		ts.Fatalf("logrecord: %d record(s) on %s match %s; want none", n, stream, strings.Join(rest, " "))
	case neg:
	case count >= 0 && n != count:
		ts.Fatalf("logrecord: %d record(s) on %s match %s; want %d", n, stream, strings.Join(rest, " "), count)
	case count < 0 && n == 0:
		ts.Fatalf("logrecord: no record on %s matches %s", stream, strings.Join(rest, " "))
	}
}

type recordMatcher struct {
	key   string
	value string
	re    *regexp.Regexp
}

func newRecordMatcher(arg string) (recordMatcher, error) {
	i := strings.IndexAny(arg, "=~")
	if i <= 0 {
		return recordMatcher{}, fmt.Errorf("%q is neither KEY=VALUE nor KEY~REGEXP", arg)
	}
	m := recordMatcher{key: arg[:i], value: arg[i+1:]}
	if arg[i] == '~' {
		re, err := regexp.Compile(m.value)
		if err != nil {
			return recordMatcher{}, fmt.Errorf("%s: %v", arg, err)
		}
		m.re = re
	}
	return m, nil
}

func matchRecord(rec map[string]any, matchers []recordMatcher) bool {
	for _, m := range matchers {
		v, ok := lookup(rec, m.key)
		if !ok {
			return false
		}
		text := attributeText(v)
		if m.re != nil {
			if !m.re.MatchString(text) {
				return false
			}
		} else if text != m.value {
			return false
		}
	}
	return true
}

// lookup finds key in rec; a dotted key (result.error.code) descends into
// nested objects when no attribute has the whole key as its name.
func lookup(rec map[string]any, key string) (any, bool) {
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
	return lookup(inner, rest)
}

// attributeText is an attribute's value as text: a string as it is, a
// number as JSON writes it (integers without an exponent), anything else
// as its JSON.
func attributeText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}
