package callback

import (
	"net/url"
	"strings"
	"testing"

	"nanofaas.dev/watchdog/config"
)

// FuzzURL checks the callback URL rule with any base and execution id:
//   - the result's path (before any query or fragment) ends in ":complete";
//   - a base whose path does not end in ":complete" keeps its scheme, host,
//     query and fragment, and its path gains exactly one segment that
//     decodes to "{id}:complete" (the id can neither add segments nor spill
//     into the query or fragment);
//   - a base whose path ends in ":complete" is used as given.
func FuzzURL(f *testing.F) {
	for _, s := range [][2]string{
		{"http://cp:8080/v1/internal/executions", "exec-1"},
		{"http://cp:8080/v1/internal/executions/", "a b/c"},
		{"https://cp/x:complete", "e"},
		{"http://cp/cb?token=a#f", "../../admin"},
		{"http://cp", "?#%2F"},
		{"http://[::1]:1/p%20q", "ünï"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, base, id string) {
		got := URL(base, id)
		pathPart := got
		if i := strings.IndexAny(got, "?#"); i >= 0 {
			pathPart = got[:i]
		}
		if !strings.HasSuffix(pathPart, ":complete") {
			t.Fatalf("URL(%q, %q) = %q: the path does not end in :complete", base, id, got)
		}
		b, err := url.Parse(base)
		if err != nil || (b.Scheme != "http" && b.Scheme != "https") || b.Host == "" || b.Opaque != "" ||
			strings.Contains(base, "%") || id == "" || config.CheckID(id) != "" {
			return
		}
		g, err := url.Parse(got)
		if err != nil {
			t.Fatalf("URL(%q, %q) = %q does not parse: %v", base, id, got, err)
		}
		if strings.HasSuffix(b.Path, ":complete") {
			if got != base {
				t.Fatalf("URL(%q, %q) = %q, want the base as given", base, id, got)
			}
			return
		}
		if g.Scheme != b.Scheme || g.Host != b.Host || g.RawQuery != b.RawQuery || g.Fragment != b.Fragment {
			t.Fatalf("URL(%q, %q) = %q changed the scheme, host, query or fragment", base, id, got)
		}
		if want := strings.TrimRight(b.Path, "/") + "/" + id + ":complete"; g.Path != want {
			t.Fatalf("URL(%q, %q) = %q: path %q, want %q", base, id, got, g.Path, want)
		}
		last := g.EscapedPath()[strings.LastIndex(g.EscapedPath(), "/")+1:]
		if seg, err := url.PathUnescape(last); err != nil || seg != id+":complete" {
			t.Fatalf("URL(%q, %q) = %q: last segment %q decodes to %q, want %q", base, id, got, last, seg, id+":complete")
		}
	})
}

// FuzzAllowed checks the CALLBACK_ALLOWED_PREFIXES rule:
//   - an allowed target has the scheme, host and port of the prefix, a path
//     under the prefix's path at a segment boundary, and no dot segment;
//   - a prefix allows itself, and the callback URLs built on it for any
//     valid execution id;
//   - adding a prefix never takes an allowance away.
func FuzzAllowed(f *testing.F) {
	for _, s := range [][3]string{
		{"http://cp:8080/v1/internal/executions/e1:complete", "http://cp:8080/v1/internal/executions", "e1"},
		{"http://cp:8080@evil/v1/internal/executions", "http://cp:8080/v1/internal/executions", "x"},
		{"http://cp:8080/v1/internal/executions/..;/admin", "http://cp:8080/v1/internal/executions", ".."},
		{"https://CP/cb/x?y#z", "https://cp:443/cb/", "a/b"},
		{"http://cp/v1/cbx", "http://cp/v1/cb", "%2e%2e"},
		{"http://cp/v1/cb/..%5c..%5cadmin", "http://cp/v1/cb", "..\\"},
		{"http://cp/v1/cb/%252e%252e/admin", "http://cp/v1/cb", "%2e"},
		{"http://cp/v1/cb/%c0%ae%c0%ae/admin", "http://cp/v1/cb", "\u00e9"},
		{"http://cp/v1/cb/\uff0e\uff0e/admin", "http://cp/v1/cb", "\uff0e\uff0e"},
		{"http://cp/v1/cb/..%20/admin", "http://cp/v1/cb", ".. "},
		{"http://cp/v1/cb/..%09/admin", "http://cp/v1/cb", "a b"},
		{"http://cp/v1/cb/.%00./admin", "http://cp/v1/cb", "x.y"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, target, prefix, id string) {
		prefixes := []string{prefix}
		if Allowed(target, prefixes) {
			tu, err := url.Parse(target)
			if err != nil {
				t.Fatalf("Allowed(%q, %q) but it does not parse", target, prefix)
			}
			pu, _ := url.Parse(prefix)
			if tu.Scheme != pu.Scheme || !strings.EqualFold(tu.Hostname(), pu.Hostname()) || portOf(tu) != portOf(pu) {
				t.Fatalf("Allowed(%q, %q): another scheme, host or port", target, prefix)
			}
			if !strings.HasPrefix(tu.Path, strings.TrimSuffix(pu.Path, "/")) {
				t.Fatalf("Allowed(%q, %q): path %q is not under %q", target, prefix, tu.Path, pu.Path)
			}
			for _, seg := range strings.Split(tu.Path, "/") {
				if seg, _, _ = strings.Cut(seg, ";"); seg == "." || seg == ".." {
					t.Fatalf("Allowed(%q, %q): a dot segment", target, prefix)
				}
				if seg = strings.Trim(seg, " \t"); seg == "." || seg == ".." {
					t.Fatalf("Allowed(%q, %q): a dot segment behind blanks", target, prefix)
				}
			}
			// The path as sent is printable ASCII; no escape decodes to a
			// dot, a slash, a backslash, a percent sign (double encoding),
			// a control or a non-ASCII byte.
			esc := tu.EscapedPath()
			for i := 0; i < len(esc); i++ {
				if c := esc[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
					t.Fatalf("Allowed(%q, %q): byte %#x in the path as sent", target, prefix, c)
				}
			}
			if dec, err := url.PathUnescape(strings.ReplaceAll(esc, "/", "")); err != nil ||
				strings.ContainsAny(dec, "/\\%") || strings.IndexFunc(dec, func(r rune) bool { return r < 0x20 || r >= 0x7f }) >= 0 {
				t.Fatalf("Allowed(%q, %q): a disguised separator, percent sign, control or non-ASCII byte in %q", target, prefix, esc)
			}
			if strings.Contains(strings.ToLower(esc), "%2e") {
				t.Fatalf("Allowed(%q, %q): an encoded dot in %q", target, prefix, esc)
			}
		}
		if Allowed(target, prefixes) && !Allowed(target, []string{"http://other.invalid/", prefix}) {
			t.Fatalf("adding a prefix took the allowance of %q away", target)
		}
		pu, err := url.Parse(prefix)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.Opaque != "" ||
			pu.User != nil || pu.RawQuery != "" || pu.ForceQuery || pu.Fragment != "" || strings.ContainsAny(prefix, "%;") || strings.Contains(pu.Path, "//") {
			return
		}
		for _, seg := range strings.Split(pu.Path, "/") {
			if seg == "." || seg == ".." {
				return
			}
		}
		// A prefix whose own path looks disguised allows nothing.
		if suspiciousPath(pu.EscapedPath()) {
			return
		}
		if !Allowed(prefix, prefixes) {
			t.Fatalf("prefix %q does not allow itself", prefix)
		}
		// An id with a slash may hide a ".." behind "%2F", one with a
		// backslash, a percent sign or a non-ASCII character may be
		// decoded into something else by the receiver: refused, by design.
		if id != "" && config.CheckID(id) == "" && plainID(id) && !Allowed(URL(prefix, id), prefixes) {
			t.Fatalf("prefix %q does not allow its callback URL %q", prefix, URL(prefix, id))
		}
	})
}

// FuzzRetryAfter checks the Retry-After header of a callback receiver's
// answer: any value gives a delay from zero to a day (it is capped at
// maxBackoff where it is used); it never overflows into a negative or
// wrapped duration.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"1", " 2 ", "-1", "0", "abc", "Wed, 21 Oct 2015 07:28:00 GMT", "9999999999999", "9223372036854775807", "+3", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := retryAfter(v)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("retryAfter(%q) = %v", v, d)
		}
	})
}

// plainID reports whether an id is printable ASCII without "/", "\", "%"
// or ";" (a ";" may cut a segment down to ".." for some servers): the ids
// whose callback URL every prefix allows.
func plainID(id string) bool {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c >= 0x7f || c == '/' || c == '\\' || c == '%' || c == ';' {
			return false
		}
	}
	return true
}
