package callback

import "testing"

func TestURL(t *testing.T) {
	for _, tc := range []struct{ base, id, want string }{
		{"http://cp:8080/v1/internal/executions", "exec-1", "http://cp:8080/v1/internal/executions/exec-1:complete"},
		{"http://cp:8080/v1/internal/executions/", "exec-1", "http://cp:8080/v1/internal/executions/exec-1:complete"},
		{"http://cp:8080/v1/internal/executions/other:complete", "exec-1", "http://cp:8080/v1/internal/executions/other:complete"},
		{"http://cp/x", "a b/c", "http://cp/x/a%20b%2Fc:complete"},
	} {
		if got := URL(tc.base, tc.id); got != tc.want {
			t.Errorf("URL(%q, %q) = %q, want %q", tc.base, tc.id, got, tc.want)
		}
	}
}
