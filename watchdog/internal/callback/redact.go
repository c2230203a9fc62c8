package callback

import (
	"errors"
	"net/url"
	"strings"
)

// redacted replaces a secret in a logged URL.
const redacted = "REDACTED"

// Redact returns target as it may be logged: the value of every query
// parameter, a user:password part and a fragment replaced with REDACTED,
// the scheme, host, port, path and parameter names kept. A callback URL
// may carry a token in its query (http://cp/cb?token=...), and the log is
// read by more people than the control plane's secrets are.
func Redact(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		if strings.Contains(target, "@") {
			return redacted + " (a URL that cannot be parsed)"
		}
		if i := strings.IndexAny(target, "?#"); i >= 0 {
			return target[:i+1] + redacted
		}
		return target
	}
	if u.User != nil {
		u.User = url.User(redacted)
	}
	if u.RawQuery != "" {
		pairs := strings.Split(u.RawQuery, "&")
		for i, p := range pairs {
			if k, _, ok := strings.Cut(p, "="); ok {
				pairs[i] = k + "=" + redacted
			}
		}
		u.RawQuery = strings.Join(pairs, "&")
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = redacted, ""
	}
	return u.String()
}

// redactError replaces the URL inside a transport error (net/http names
// the URL, query included, in its errors) with its redacted form.
func redactError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = Redact(ue.URL)
	}
	return err
}
