package scripttest

import (
	"flag"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"nanofaas.dev/devkit/logrecords"
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
	matchers := make([]logrecords.Matcher, 0, len(rest))
	for _, a := range rest {
		m, err := logrecords.ParseMatcher(a)
		if err != nil {
			ts.Fatalf("logrecord: %v", err)
		}
		matchers = append(matchers, m)
	}
	recs, err := logrecords.Parse(ts.ReadFile(stream))
	if err != nil {
		ts.Fatalf("logrecord: %v", err)
	}
	n := len(logrecords.Matching(recs, matchers))
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
