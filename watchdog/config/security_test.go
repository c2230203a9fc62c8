package config

import (
	"strings"
	"testing"
)

// Ids travel as HTTP headers, in the environment, in logs and in URLs:
// characters a reader cannot see, or that reorder what is shown, are
// refused like control characters.
func TestCheckIDRefusesInvisibleCharacters(t *testing.T) {
	for _, id := range []string{
		"a\u0085b", "a\u009bb", "a\u0080", "\u009f",
		"a\u202eb", "a\u202ab", "a\u2066b", "a\u2069b",
		"\ufeffa", "a\ufeff",
		"a\u200bb", "a\u200eb", "a\u00adb", "a\u2060b", "a\u2028b", "a\u2029b",
		"a\U000e0001b",
	} {
		if msg := CheckID(id); msg == "" {
			t.Errorf("CheckID(%q) accepted", id)
		}
	}
	for _, id := range []string{"exec-1", "a b", "café", "日本語", "a.b_c~d"} {
		if msg := CheckID(id); msg != "" {
			t.Errorf("CheckID(%q) = %q", id, msg)
		}
	}
}

// A WARM_AUTH_TOKEN with surrounding blanks (a secret file's trailing
// newline) or control characters can never match what a client sends: it
// is refused at start, naming the variable and the fix, without its value.
func TestWarmAuthTokenMustBeSendable(t *testing.T) {
	for _, tok := range []string{"s3cret\n", " s3cret", "s3cret\t", "s3\x00cret", "s3cret\r\n"} {
		_, err := New([]string{"WARM=true", "WARM_AUTH_TOKEN=" + tok})
		if err == nil {
			t.Errorf("WARM_AUTH_TOKEN=%q accepted", tok)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "WARM_AUTH_TOKEN") || strings.Contains(msg, "s3") || !strings.Contains(msg, "newline") {
			t.Errorf("WARM_AUTH_TOKEN=%q: %q; want the variable and the fix named, the value not shown", tok, msg)
		}
	}
	c, err := New([]string{"WARM=true", "WARM_AUTH_TOKEN=s3cret-token with inner blank"})
	if err != nil || c.WarmAuthToken != "s3cret-token with inner blank" {
		t.Errorf("a plain token: %v %q", err, c.WarmAuthToken)
	}
}
