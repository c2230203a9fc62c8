package callback

import "testing"

// The id goes into the path, before a query or fragment of the base: it used
// to be appended after them (lost in the query, or never sent at all).
func TestURLKeepsTheQueryAndFragmentOfTheBase(t *testing.T) {
	for _, tc := range []struct{ base, id, want string }{
		{"http://cp/cb?token=abc", "e1", "http://cp/cb/e1:complete?token=abc"},
		{"http://cp/cb/?token=abc", "e1", "http://cp/cb/e1:complete?token=abc"},
		{"http://cp/cb#frag", "e1", "http://cp/cb/e1:complete#frag"},
		{"http://cp?x=1", "e1", "http://cp/e1:complete?x=1"},
		{"http://cp/x:complete?token=1", "e1", "http://cp/x:complete?token=1"},
		{"http://cp/cb", "a?b#c", "http://cp/cb/a%3Fb%23c:complete"},
		// A base path with a blank: escaped, so that the id's %2F stays one.
		{"http://cp/my cb", "../../admin", "http://cp/my%20cb/..%2F..%2Fadmin:complete"},
		{"http://cp/caf\xc3\xa9/100%/ok%20", "e", "http://cp/caf%C3%A9/100%25/ok%20/e:complete"},
	} {
		if got := URL(tc.base, tc.id); got != tc.want {
			t.Errorf("URL(%q, %q) = %q, want %q", tc.base, tc.id, got, tc.want)
		}
	}
}

func TestAllowed(t *testing.T) {
	prefixes := []string{"http://cp:8080/v1/internal/executions", "https://Other.example/cb/"}
	for target, want := range map[string]bool{
		"http://cp:8080/v1/internal/executions":                     true,
		"http://cp:8080/v1/internal/executions/":                    true,
		"http://cp:8080/v1/internal/executions/e1:complete":         true,
		"http://CP:8080/v1/internal/executions?x=1#y":               true,
		"https://other.example/cb/x":                                true,
		"https://other.example:443/cb/x":                            true,
		"https://other.example/cb":                                  false, // the prefix is /cb/
		"http://cp:8080/v1/internal/executionsX":                    false,
		"http://cp:8080/v1/internal":                                false,
		"http://cp:8081/v1/internal/executions":                     false,
		"https://cp:8080/v1/internal/executions":                    false,
		"http://cp/v1/internal/executions":                          false,
		"http://cp:8080.evil.example/v1/internal/executions":        false,
		"http://cp:8080@evil.example/v1/internal/executions":        false,
		"http://evil.example/v1/internal/executions?cp:8080":        false,
		"http://cp:8080/v1/internal/executions/../../admin":         false,
		"http://cp:8080/v1/internal/executions/%2e%2e/%2e%2e/admin": false,
		"http://cp:8080/v1/internal/executions%2F..%2F..%2Fadmin":   false,
		"http://cp:8080/v1/internal/executions/..;/..;/admin":       false,
		"http://cp:8080/v1/internal/executions/.;x/e1":              false,
		"http://cp:8080/v1/internal/executions/..%2fadmin":          false,
		"http://cp:8080/v1/internal/executions/%2e%2e;x/admin":      false,
		"http://cp:8080/v1/internal/executions/a%3Bb/e1:complete":   true,
		"http://user:pw@cp:8080/v1/internal/executions":             false,
		"http://cp:8080/v1/internal/executions/a..b/e1":             true,
		"/v1/internal/executions":                                   false,
		"http:cp:8080/v1/internal/executions":                       false,
	} {
		if got := Allowed(target, prefixes); got != want {
			t.Errorf("Allowed(%q) = %v, want %v", target, got, want)
		}
	}
	if !Allowed("http://anything:1/x", []string{"http://anything:1"}) {
		t.Error("a prefix without a path allows the whole host")
	}
	if Allowed("http://cp/x", nil) {
		t.Error("no prefixes allow nothing")
	}
}
