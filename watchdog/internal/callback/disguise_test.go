package callback

import "testing"

// Dot segments and separators in disguise: what a server, a proxy or a
// framework may decode into ".." or "/" (double encoding, backslashes,
// overlong UTF-8, fullwidth dots, blanks and NULs around dots) is refused,
// and so is anything else unusual in the path (non-ASCII, controls).
func TestAllowedRefusesDisguisedPaths(t *testing.T) {
	prefixes := []string{"http://cp:8080/v1/cb"}
	for _, path := range []string{
		"/v1/cb/..%5c..%5cadmin",
		"/v1/cb/%5c..%5cadmin",
		"/v1/cb/..%5Cadmin",
		"/v1/cb/%252e%252e/admin",
		"/v1/cb/%25%32%65%25%32%65/admin",
		"/v1/cb/%c0%ae%c0%ae/admin",
		"/v1/cb/%C0%AE%C0%AE/admin",
		"/v1/cb/%e0%80%ae%e0%80%ae/admin",
		"/v1/cb/．．/admin",
		"/v1/cb/%EF%BC%8E%EF%BC%8E/admin",
		"/v1/cb/..%20/admin",
		"/v1/cb/%20../admin",
		"/v1/cb/..%09/admin",
		"/v1/cb/.%00./admin",
		"/v1/cb/..%00/admin",
		"/v1/cb/%2e./admin",
		"/v1/cb/x%2fy",
		"/v1/cb/x%2Fy",
		"/v1/cb/x\\..\\admin",
		"/v1/cb/x%7f",
		"/v1/cb/caf%C3%A9",
		"/v1/cb/é",
		"/v1/cb/a%0d%0aHost:evil",
		"/v1/cb/..;/admin",
		"/v1/cb/.",
		"/v1/cb/%2e",
	} {
		if Allowed("http://cp:8080"+path, prefixes) {
			t.Errorf("%s is allowed", path)
		}
	}
	for _, path := range []string{
		"/v1/cb",
		"/v1/cb/",
		"/v1/cb/e1:complete",
		"/v1/cb/a%20b:complete",
		"/v1/cb/a%3Fb%23c:complete",
		"/v1/cb/a.b/...:complete",
		"/v1/cb/x;v=1/e:complete",
	} {
		if !Allowed("http://cp:8080"+path, prefixes) {
			t.Errorf("%s is refused", path)
		}
	}
}
