package config

import (
	"slices"
	"strings"
	"testing"
)

// Bytes that are not UTF-8 are part of a file name like any other: the
// split keeps them (it used to turn each into U+FFFD).
func TestSplitCommandKeepsNonUTF8Bytes(t *testing.T) {
	got, err := SplitCommand("/app/caf\xe9.sh 'x\xff' \"\xfe\" \\\xfd")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/app/caf\xe9.sh", "x\xff", "\xfe", "\xfd"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	// Positions in messages stay character positions.
	if _, err := SplitCommand(`é 'open`); err == nil || !strings.Contains(err.Error(), "position 3") {
		t.Errorf("error %v, want the quote at position 3", err)
	}
}

func TestIDsMustBeHeaderSafe(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"EXECUTION_ID=e\n1", `EXECUTION_ID="e\n1" is invalid: UTF-8 text of at most 1024 bytes without control or invisible characters`},
		{"EXECUTION_ID= e1", `EXECUTION_ID=" e1" is invalid`},
		{"EXECUTION_ID=" + strings.Repeat("x", 1025), `this one has 1025 bytes, over the 1024 allowed`},
		{"TRACE_ID=t\x7f", `TRACE_ID="t\x7f" is invalid`},
		{"TRACE_ID=\xff", `this one has not valid UTF-8`},
	} {
		env := []string{"EXECUTION_ID=e1", "CALLBACK_URL=http://cp/cb", tc.env}
		_, err := New(env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.env, err, tc.want)
		}
	}
	for _, ok := range []string{"e1", "exec-8f14e45f-ceea-467f-a0e6-61d1b0a0bb5a", "ünï code", strings.Repeat("x", 1024)} {
		if msg := CheckID(ok); msg != "" {
			t.Errorf("CheckID(%q) = %q, want it accepted", ok, msg)
		}
	}
}

func TestCallbackAllowedPrefixes(t *testing.T) {
	c, err := New([]string{"WARM=true", "CALLBACK_ALLOWED_PREFIXES= http://cp:8080/v1/internal/executions , https://cp2/,"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://cp:8080/v1/internal/executions", "https://cp2/"}; !slices.Equal(c.CallbackAllowedPrefixes, want) {
		t.Errorf("prefixes %q, want %q", c.CallbackAllowedPrefixes, want)
	}
	c, err = New([]string{"WARM=true"})
	if err != nil || c.CallbackAllowedPrefixes != nil {
		t.Errorf("unset: %q, %v", c.CallbackAllowedPrefixes, err)
	}
	for value, want := range map[string]string{
		",":                       "at least one http:// or https:// URL prefix",
		"cp:8080":                 `"cp:8080" is not one`,
		"http://a/,ftp://b/":      `"ftp://b/" is not one (scheme "ftp")`,
		"http:///x":               "(no host)",
		"http://cp/x?y=1":         `"http://cp/x?y=1" has one`,
		"http://cp/x#f":           "has one",
		"http://user:pw@cp/x":     "has one",
		"http://cp/x,http://cp?a": "has one",
	} {
		_, err := New([]string{"WARM=true", "CALLBACK_ALLOWED_PREFIXES=" + value})
		if err == nil || !strings.HasPrefix(err.Error(), "CALLBACK_ALLOWED_PREFIXES=") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to say %q", value, err, want)
		}
	}
}
