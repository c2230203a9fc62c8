package conformance

import (
	"regexp"
	"strings"
)

// accessLog matches the access-log lines of common HTTP servers (uvicorn,
// gunicorn, werkzeug, express loggers): noise in a reason.
var accessLog = regexp.MustCompile(`"(GET|POST|PUT|HEAD|DELETE|PATCH|OPTIONS) /\S* HTTP/\d(\.\d)?"\s+\d{3}\b|^(INFO|DEBUG):\s+\S+:\d+ - "|\b(GET|POST|HEAD) /\S* \d{3} \d+(\.\d+)? ?ms\b`)

// excerpt makes a reason out of a multi-line text (an error message with a
// traceback, a log tail): access-log lines and blank lines are dropped, and
// whole lines are kept from the end, where a traceback says what went wrong,
// up to about n bytes; lines are joined with " | ". A line is never cut in
// the middle, except a single last line longer than n, which keeps its start.
func excerpt(text string, n int) string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.Join(strings.Fields(l), " ")
		if l == "" || accessLog.MatchString(l) {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return ""
	}
	last := lines[len(lines)-1]
	if len(last) > n {
		return last[:n] + "..."
	}
	kept := []string{last}
	size := len(last)
	for i := len(lines) - 2; i >= 0; i-- {
		// The first line often says what failed ("...; stderr: Traceback"):
		// keep it when it fits with the end.
		if size+len(lines[i])+3 > n {
			if i > 0 && size+len(lines[0])+8 <= n {
				kept = append(kept, "...", lines[0])
			} else {
				kept = append(kept, "...")
			}
			break
		}
		kept = append(kept, lines[i])
		size += len(lines[i]) + 3
	}
	for i, j := 0, len(kept)-1; i < j; i, j = i+1, j-1 {
		kept[i], kept[j] = kept[j], kept[i]
	}
	return strings.Join(kept, " | ")
}
