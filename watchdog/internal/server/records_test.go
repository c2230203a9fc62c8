package server_test

import (
	"regexp"
	"testing"

	"nanofaas.dev/devkit/logrecords"
)

// record is one JSON log record of the watchdog, decoded.
type record = logrecords.Record

// records decodes the JSON log records in logs, one object a line; lines
// that are not JSON objects are skipped, so checks hold whatever else the
// log carries.
func records(t testing.TB, logs string) []record {
	t.Helper()
	recs, err := logrecords.Parse(logs)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// matching returns the records that have every attribute of want. A key
// with dots (result.output.i) names an attribute of a nested object. A
// value is compared as text (strings as they are, numbers and booleans as
// JSON writes them, so 3 matches 3 and true matches true); a
// *regexp.Regexp value matches the attribute's text instead.
func matching(recs []record, want map[string]any) []record {
	return logrecords.Matching(recs, logrecords.Want(want))
}

// hasRecord reports whether a record has every attribute of want (see
// matching).
func hasRecord(recs []record, want map[string]any) bool {
	return len(matching(recs, want)) > 0
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
