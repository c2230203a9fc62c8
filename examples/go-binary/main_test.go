package main

import (
	"strings"
	"testing"
)

func TestHandle(t *testing.T) {
	ok := []struct{ in, out string }{
		{`{"input":"hello","n":1}`, `{"input":"HELLO","n":1}`},
		{` {"b":[1,2.50,{"c":null}],"input":"héllo <&>"} `, `{"b":[1,2.50,{"c":null}],"input":"HéLLO <&>"}`},
		{`{"big":123456789012345678901234567890,"input":"x"}`, `{"big":123456789012345678901234567890,"input":"X"}`},
		{`{"input":"a","input":"b"}`, `{"input":"B"}`},
		{`{"input":"a\"b\u00e9"}`, `{"input":"A\"Bé"}`},
	}
	for _, c := range ok {
		got, err := handle([]byte(c.in))
		if err != nil {
			t.Errorf("handle(%s): %v", c.in, err)
			continue
		}
		if strings.TrimSuffix(string(got), "\n") != c.out {
			t.Errorf("handle(%s) = %s, want %s", c.in, got, c.out)
		}
	}
	bad := []struct{ in, msg string }{
		{``, "empty"},
		{`nope`, "not valid JSON"},
		{`[1]`, "got array"},
		{`"s"`, "got string"},
		{`{}`, "got nothing"},
		{`{"input":3}`, "got number"},
		{`{"input":null}`, "got null"},
		{`{"input":"a"} {}`, "more than one"},
	}
	for _, c := range bad {
		if _, err := handle([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("handle(%q) error = %v, want one containing %q", c.in, err, c.msg)
		}
	}
}
