package conformance

import (
	"strings"
	"testing"
)

// A reason keeps whole lines from the end of a traceback, drops access-log
// lines, and never cuts a line in the middle.
func TestExcerptKeepsTheUsefulEndOfATraceback(t *testing.T) {
	msg := `function exited with code 1; stderr: Traceback (most recent call last):
INFO:     127.0.0.1:50312 - "GET /health HTTP/1.1" 200 OK
127.0.0.1 - - [27/Nov/2026 10:00:00] "POST /invoke HTTP/1.1" 500 -
  File "/app/handler.py", line 40, in <module>
    main()
  File "/app/handler.py", line 31, in main
    out = handle(json.load(sys.stdin))
  File "/app/handler.py", line 12, in handle
    raise ValueError("field \"input\" must be a string")
ValueError: field "input" must be a string`
	got := excerpt(msg, 200)
	if strings.Contains(got, "HTTP/1.1") {
		t.Errorf("access-log lines kept: %s", got)
	}
	if !strings.HasSuffix(got, `ValueError: field "input" must be a string`) {
		t.Errorf("the exception line is not kept whole at the end: %s", got)
	}
	for _, part := range strings.Split(got, " | ") {
		if part == "..." {
			continue
		}
		found := false
		for _, line := range strings.Split(msg, "\n") {
			if strings.Join(strings.Fields(line), " ") == part {
				found = true
			}
		}
		if !found {
			t.Errorf("%q is not a whole line of the message", part)
		}
	}
	if len(got) > 220 {
		t.Errorf("excerpt is %d bytes, want about 200: %s", len(got), got)
	}
	if got := excerpt(msg, 2000); !strings.HasPrefix(got, "function exited with code 1; stderr: Traceback") {
		t.Errorf("with room, the first line is kept: %s", got)
	}
}
