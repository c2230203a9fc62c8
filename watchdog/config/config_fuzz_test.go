package config

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// shellQuote quotes one argument so that SplitCommand reads it back
// unchanged: inside single quotes everything is literal, and a single quote
// is closed, escaped and reopened.
func shellQuote(arg string) string {
	return "'" + strings.ReplaceAll(arg, "'", `'\''`) + "'"
}

func joinQuoted(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

// FuzzSplitCommand checks WATCHDOG_CMD splitting:
//   - it never panics, and an error names a position inside the line;
//   - a split line, re-joined with proper quoting and split again, gives
//     the same arguments (the split is stable);
//   - a line without quotes or backslashes splits exactly like
//     strings.Fields on the four blanks, bytes preserved (invalid UTF-8 too);
//   - every argument's bytes come from the line: nothing is invented.
func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{
		"java -jar /app/app.jar", `python3 "my script.py"`, `echo 'it''s'`,
		`echo "a \"b\" \$c \\ \x"`, `back\ slash`, `empty "" ''`, "line\\\ncontinued",
		"caf\xe9 \xff\xfe", `unclosed "quote`, `trailing \`, "ünïcode ☃",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args, err := SplitCommand(line)
		if err != nil {
			if !strings.Contains(err.Error(), "not closed") && !strings.Contains(err.Error(), "lone backslash") {
				t.Fatalf("SplitCommand(%q): unexpected error %v", line, err)
			}
			return
		}
		again, err := SplitCommand(joinQuoted(args))
		if err != nil {
			t.Fatalf("re-split of %q (from %q) failed: %v", joinQuoted(args), line, err)
		}
		if !slices.Equal(args, again) && !(len(args) == 0 && len(again) == 0) {
			t.Fatalf("SplitCommand(%q) = %q, but re-joined and re-split: %q", line, args, again)
		}
		if !strings.ContainsAny(line, `'"\`) {
			want := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' })
			if !slices.Equal(args, want) && !(len(args) == 0 && len(want) == 0) {
				t.Fatalf("SplitCommand(%q) = %q, want %q (plain words, bytes preserved)", line, args, want)
			}
		}
		total := 0
		for _, a := range args {
			total += len(a)
		}
		if total > len(line) {
			t.Fatalf("SplitCommand(%q) = %q: more bytes out than in", line, args)
		}
	})
}

// FuzzSplitCommandRoundTrip starts from arguments: any list of arguments,
// quoted and joined, splits back to exactly that list.
func FuzzSplitCommandRoundTrip(f *testing.F) {
	f.Add("python3", "/app/my handler.py", "it's")
	f.Add("", " ", "\\")
	f.Add("\"", "'", "$HOME `x` \\\n")
	f.Add("caf\xe9", "\xff", "☃")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		args := []string{a, b, c}
		got, err := SplitCommand(joinQuoted(args))
		if err != nil {
			t.Fatalf("SplitCommand(%q): %v", joinQuoted(args), err)
		}
		if !slices.Equal(got, args) {
			t.Fatalf("SplitCommand(%q) = %q, want %q", joinQuoted(args), got, args)
		}
	})
}

// fuzzEnv turns fuzz input into an environment: entries separated by NUL
// (which no real environment contains).
func fuzzEnv(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

// FuzzNew checks configuration from the environment:
//   - it never panics and is deterministic;
//   - an error is a *Error naming a documented variable, on one line;
//   - a configuration it accepts is one the watchdog can run with: every
//     invariant the rest of the code relies on holds.
func FuzzNew(f *testing.F) {
	for _, env := range [][]string{
		{"EXECUTION_ID=e1", "CALLBACK_URL=http://cp:8080/v1/internal/executions"},
		{"EXECUTION_MODE=WARM"},
		{"EXECUTION_MODE=stdio", "WARM=true", "WARM_PORT=9000", "CALLBACK_ALLOWED_PREFIXES=http://cp:8080/v1/,https://cp2/"},
		{"EXECUTION_MODE=FILE", "EXECUTION_ID=e", "CALLBACK_URL=https://cp/x:complete", "INPUT_FILE=/a", "OUTPUT_FILE=/b"},
		{"EXECUTION_MODE=WARM", "RUNTIME_URL=http://[::1]:8081/invoke", "HEALTH_URL=https://h/ready?x#y"},
		{"EXECUTION_ID=e\n1", "CALLBACK_URL=http://cp/", "TRACE_ID=t\x7f"},
		{"EXECUTION_ID=e", "CALLBACK_URL=http://u:p@cp:1/", `WATCHDOG_CMD=sh -c 'echo "hi"'`, `INVOCATION_PAYLOAD={"a":[1,2]}`},
		{"WARM=1", "TIMEOUT_MS=99999999999999999999", "MAX_OUTPUT_BYTES=-1", "WARM_MAX_INVOCATIONS=2147483649"},
		{"WARM=true", "EXECUTION_MODE=HTTP", "RUNTIME_URL=http://127.0.0.1:0/x"},
		{"WARM=true", "CALLBACK_ALLOWED_PREFIXES=,", "LOG_LEVEL=DEBUG-4", "LOG_FORMAT=Text"},
	} {
		f.Add(strings.Join(env, "\x00"))
	}
	documented := map[string]bool{}
	for _, v := range Variables() {
		documented[v.Name] = true
	}
	f.Fuzz(func(t *testing.T, input string) {
		env := fuzzEnv(input)
		c, err := New(env)
		c2, err2 := New(env)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) || !reflect.DeepEqual(c, c2) {
			t.Fatalf("New is not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is a %T, not a *config.Error", err, err)
			}
			if !documented[ce.Var] {
				t.Fatalf("error names %q, which is not a documented variable", ce.Var)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, ce.Var) || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error %q does not start with the variable name or spans lines", msg)
			}
			return
		}
		checkAccepted(t, env, c)
	})
}

func checkAccepted(t *testing.T, env []string, c Config) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("accepted %q but "+format, append([]any{env}, args...)...)
	}
	switch c.Protocol {
	case ProtocolHTTP, ProtocolSTDIO, ProtocolFILE:
	default:
		fail("protocol %q", c.Protocol)
	}
	if c.Lifecycle != OneShot && c.Lifecycle != Server {
		fail("lifecycle %q", c.Lifecycle)
	}
	if c.Lifecycle == OneShot && (c.ExecutionID == "" || c.CallbackURL == "") {
		fail("one-shot without execution id or callback URL")
	}
	for name, id := range map[string]string{"EXECUTION_ID": c.ExecutionID, "TRACE_ID": c.TraceID} {
		if msg := CheckID(id); msg != "" {
			fail("%s %q cannot travel as a header: %s", name, id, msg)
		}
	}
	if len(c.Command) == 0 {
		fail("an empty command")
	}
	if c.Timeout <= 0 || c.ReadyTimeout <= 0 || c.CallbackTimeout <= 0 || c.KillGrace < 0 || c.CallbackBackoff < 0 || c.WarmIdleTimeout < 0 {
		fail("a duration out of range: %+v", c)
	}
	if c.CallbackAttempts < 1 || c.MaxOutputBytes < 1 || c.MaxPayloadBytes < 1 || c.WarmMaxInvocations < 0 {
		fail("a count out of range: %+v", c)
	}
	if c.WarmPort < 1 || c.WarmPort > 65535 || c.RuntimePort < 1 || c.RuntimePort > 65535 {
		fail("a port out of range: %d %d", c.WarmPort, c.RuntimePort)
	}
	if c.Lifecycle == Server && c.Protocol == ProtocolHTTP && c.RuntimePort == c.WarmPort {
		fail("the runtime's port is WARM_PORT")
	}
	if !strings.HasPrefix(c.InputFile, "/") || !strings.HasPrefix(c.OutputFile, "/") {
		fail("relative FILE paths")
	}
	if c.Protocol == ProtocolFILE && c.InputFile == c.OutputFile {
		fail("INPUT_FILE == OUTPUT_FILE")
	}
	for _, u := range []string{c.RuntimeURL, c.HealthURL, c.CallbackURL} {
		if u == "" && c.Lifecycle == Server {
			continue // CALLBACK_URL is optional in server mode
		}
		if checkHTTPURL(u) != nil {
			fail("URL %q is not an absolute http(s) URL", u)
		}
	}
	for _, p := range c.CallbackAllowedPrefixes {
		pu, err := url.Parse(p)
		if err != nil || checkHTTPURL(p) != nil || pu.RawQuery != "" || pu.Fragment != "" {
			fail("callback prefix %q", p)
		}
	}
	if !json.Valid(c.Payload) {
		fail("payload %q is not one JSON document", c.Payload)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		fail("log format %q", c.LogFormat)
	}
	if !slices.Equal(c.Env, env) {
		fail("Env is not a copy of the environment")
	}
}
