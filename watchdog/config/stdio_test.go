package config

import (
	"strings"
	"testing"
)

func TestStdioProtocol(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want StdioProtocol
	}{
		{[]string{"EXECUTION_MODE=STDIO", "WARM=true"}, StdioPerInvocation},
		{[]string{"EXECUTION_MODE=STDIO", "WARM=true", "STDIO_PROTOCOL=lines"}, StdioLines},
		{[]string{"EXECUTION_MODE=stdio", "WARM=true", "STDIO_PROTOCOL= LINES "}, StdioLines},
		{[]string{"EXECUTION_MODE=STDIO", "WARM=true", "STDIO_PROTOCOL="}, StdioPerInvocation},
		{oneShot("EXECUTION_MODE=STDIO", "STDIO_PROTOCOL=per-invocation"), StdioPerInvocation},
		{[]string{"EXECUTION_MODE=WARM", "STDIO_PROTOCOL=per-invocation"}, StdioPerInvocation},
	} {
		c, err := New(tc.env)
		if err != nil {
			t.Errorf("%v: %v", tc.env, err)
			continue
		}
		if c.StdioProtocol != tc.want {
			t.Errorf("%v: StdioProtocol %q, want %q", tc.env, c.StdioProtocol, tc.want)
		}
	}
}

func TestStdioProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"EXECUTION_MODE=STDIO", "WARM=true", "STDIO_PROTOCOL=line"}, `STDIO_PROTOCOL="line" is invalid: per-invocation (the default) or lines`},
		{oneShot("EXECUTION_MODE=STDIO", "STDIO_PROTOCOL=lines"), `STDIO_PROTOCOL="lines" is invalid: lines needs server mode with the STDIO protocol (WARM=true and EXECUTION_MODE=STDIO), here EXECUTION_MODE=STDIO in one-shot mode`},
		{[]string{"EXECUTION_MODE=WARM", "STDIO_PROTOCOL=lines"}, `STDIO_PROTOCOL="lines" is invalid: lines needs server mode with the STDIO protocol (WARM=true and EXECUTION_MODE=STDIO), here EXECUTION_MODE=WARM in server mode`},
		{[]string{"EXECUTION_MODE=FILE", "WARM=true", "STDIO_PROTOCOL=lines"}, `STDIO_PROTOCOL="lines" is invalid: lines needs server mode`},
		{[]string{"EXECUTION_MODE=STDIO", "WARM=true", "STDIO_PROTOCOL=lines", "WARM_CONCURRENCY=2"}, `WARM_CONCURRENCY="2" is invalid: 1 with STDIO_PROTOCOL=lines`},
	} {
		_, err := New(tc.env)
		if err == nil {
			t.Errorf("%v: no error, want %q", tc.env, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%v:\n got %q\nwant prefix %q", tc.env, err, tc.want)
		}
	}
}
