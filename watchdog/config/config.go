// Package config turns the process environment into the watchdog's
// configuration. New is a pure function of the environment: it reads nothing
// else, and every bad value is an error naming the variable, the value and what
// is accepted.
package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Protocol is how the watchdog talks to the function process.
type Protocol string

// The runtime protocols.
const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolSTDIO Protocol = "STDIO"
	ProtocolFILE  Protocol = "FILE"
)

// StdioProtocol is how a STDIO function is run in server mode.
type StdioProtocol string

// The STDIO protocols of server mode.
const (
	// StdioPerInvocation starts a process per invocation (the default).
	StdioPerInvocation StdioProtocol = "per-invocation"
	// StdioLines keeps one process warm: a request line per invocation on
	// its stdin, a result line on file descriptor ResultFD.
	StdioLines StdioProtocol = "lines"
)

// ResultFD is the file descriptor on which a STDIO_PROTOCOL=lines function
// writes its result lines; it is told so in NANOFAAS_RESULT_FD.
const ResultFD = 3

// Lifecycle says whether the watchdog runs one invocation or serves many.
type Lifecycle string

// The lifecycles.
const (
	// OneShot runs the invocation from the environment, posts the result and exits.
	OneShot Lifecycle = "one-shot"
	// Server serves /invoke on WARM_PORT.
	Server Lifecycle = "server"
)

// defaultServerRuntimePort is where an HTTP runtime listens in server mode
// when RUNTIME_URL is not set, so that it does not clash with WARM_PORT.
const defaultServerRuntimePort = 8081

// Bounds of the server mode's slots and queue: each waiting or running
// request may hold a body of up to MAX_PAYLOAD_BYTES.
const (
	maxWarmConcurrency = 1024
	maxWarmQueueSize   = 65536
)

// Config is the watchdog's whole configuration.
type Config struct {
	Lifecycle Lifecycle
	Protocol  Protocol
	// Mode is EXECUTION_MODE as given (upper-cased), for logs and metrics.
	Mode string
	// StdioProtocol is STDIO_PROTOCOL: StdioLines only in server mode with
	// the STDIO protocol.
	StdioProtocol StdioProtocol

	ExecutionID string
	CallbackURL string
	TraceID     string
	Payload     json.RawMessage

	Command      []string
	RuntimeURL   string
	HealthURL    string
	RuntimePort  int
	ReadyTimeout time.Duration
	Timeout      time.Duration
	KillGrace    time.Duration

	InputFile      string
	OutputFile     string
	MaxOutputBytes int64

	WarmPort           int
	WarmIdleTimeout    time.Duration
	WarmMaxInvocations int
	WarmAuthToken      string
	// WarmMaxConnections caps the connections open to WARM_PORT at once;
	// 0 means no cap.
	WarmMaxConnections int
	MaxPayloadBytes    int64
	// WarmConcurrency is how many invocations run at once in server mode.
	WarmConcurrency int
	// WarmQueueSize is how many requests may wait for a slot; 0: none.
	WarmQueueSize int
	// WarmQueueTimeout caps the wait for a slot; 0: the invocation's own
	// timeout is the only bound.
	WarmQueueTimeout time.Duration
	// PassCallbackURL hands CALLBACK_URL to the function (PASS_CALLBACK_URL).
	PassCallbackURL bool

	CallbackAttempts int
	CallbackBackoff  time.Duration
	CallbackTimeout  time.Duration
	// CallbackAllowedPrefixes, when not empty, are the only URL prefixes a
	// callback_url taken from an /invoke request may start with.
	CallbackAllowedPrefixes []string

	FunctionName string
	Subreaper    bool
	LogLevel     slog.Level
	LogFormat    string
	// FunctionLogFormat is "wrapped" or "raw" (FUNCTION_LOG_FORMAT).
	FunctionLogFormat string

	// Env is the environment the watchdog was given; the function inherits it.
	Env []string
}

// Error is a configuration error: one variable, its value, and what is accepted.
type Error struct {
	Var      string
	Value    string
	Accepted string
	// Hidden: the value is a secret, and the message does not show it.
	Hidden bool
}

// Error is the one line that names the variable, its value and what is accepted.
func (e *Error) Error() string {
	if e.Hidden {
		return fmt.Sprintf("%s (value not shown) is invalid: %s", e.Var, e.Accepted)
	}
	if e.Value == "" {
		return fmt.Sprintf("%s is not set: %s", e.Var, e.Accepted)
	}
	return fmt.Sprintf("%s=%q is invalid: %s", e.Var, e.Value, e.Accepted)
}

// New builds the configuration from an environment in os.Environ form.
func New(env []string) (Config, error) {
	vals := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			vals[k] = v
		}
	}
	p := parser{vals: vals}
	var c Config
	c.Env = append([]string(nil), env...)

	mode := strings.ToUpper(strings.TrimSpace(p.str("EXECUTION_MODE")))
	warm := p.boolean("WARM")
	switch mode {
	case "HTTP", "STDIO", "FILE":
		c.Protocol = Protocol(mode)
	case "WARM":
		c.Protocol = ProtocolHTTP
		warm = true
	default:
		p.fail("EXECUTION_MODE", p.raw("EXECUTION_MODE"), "one of HTTP, STDIO, FILE, WARM")
	}
	c.Mode = mode
	c.Lifecycle = OneShot
	if warm {
		c.Lifecycle = Server
	}

	c.ExecutionID = p.str("EXECUTION_ID")
	c.CallbackURL = p.url("CALLBACK_URL")
	c.TraceID = p.str("TRACE_ID")
	p.id("EXECUTION_ID", c.ExecutionID)
	p.id("TRACE_ID", c.TraceID)
	if c.Lifecycle == OneShot && p.err == nil {
		if c.ExecutionID == "" {
			p.fail("EXECUTION_ID", "", "one-shot mode needs the execution id (or set WARM=true for server mode)")
		} else if c.CallbackURL == "" {
			p.fail("CALLBACK_URL", "", "one-shot mode needs the control plane's callback URL, e.g. http://control-plane:8080/v1/internal/executions")
		}
	}

	payload := p.str("INVOCATION_PAYLOAD")
	if strings.TrimSpace(payload) == "" {
		payload = "null"
	}
	if !json.Valid([]byte(payload)) {
		p.fail("INVOCATION_PAYLOAD", payload, "one JSON document, e.g. {\"input\":\"hello\"}")
	}
	c.Payload = json.RawMessage(payload)

	cmdline := p.str("WATCHDOG_CMD")
	args, err := SplitCommand(cmdline)
	switch {
	case err != nil:
		p.fail("WATCHDOG_CMD", cmdline, "a command line with balanced quotes ("+err.Error()+")")
	case len(args) == 0:
		p.fail("WATCHDOG_CMD", cmdline, "a non-empty command, e.g. \"python3 /app/handler.py\"")
	}
	c.Command = args

	c.Timeout = p.millis("TIMEOUT_MS", false)
	c.ReadyTimeout = p.millis("READY_TIMEOUT_MS", false)
	c.KillGrace = p.millis("KILL_GRACE_MS", true)
	c.InputFile = p.path("INPUT_FILE")
	c.OutputFile = p.path("OUTPUT_FILE")
	if c.Protocol == ProtocolFILE && c.InputFile == c.OutputFile && p.err == nil {
		p.fail("OUTPUT_FILE", c.OutputFile, "a path different from INPUT_FILE")
	}
	c.MaxOutputBytes = p.positive("MAX_OUTPUT_BYTES")
	c.MaxPayloadBytes = p.positive("MAX_PAYLOAD_BYTES")

	c.WarmPort = p.port("WARM_PORT")
	c.WarmIdleTimeout = p.millis("WARM_IDLE_TIMEOUT_MS", true)
	c.WarmMaxInvocations = int(p.nonNegative("WARM_MAX_INVOCATIONS"))
	c.WarmAuthToken = p.str("WARM_AUTH_TOKEN")
	p.token("WARM_AUTH_TOKEN", c.WarmAuthToken)
	c.WarmMaxConnections = int(p.nonNegative("WARM_MAX_CONNECTIONS"))
	c.WarmConcurrency = int(p.positive("WARM_CONCURRENCY"))
	if c.WarmConcurrency > maxWarmConcurrency {
		p.fail("WARM_CONCURRENCY", p.raw("WARM_CONCURRENCY"), fmt.Sprintf("a whole number from 1 to %d", maxWarmConcurrency))
	}
	c.WarmQueueSize = int(p.nonNegative("WARM_QUEUE_SIZE"))
	if c.WarmQueueSize > maxWarmQueueSize {
		p.fail("WARM_QUEUE_SIZE", p.raw("WARM_QUEUE_SIZE"), fmt.Sprintf("a whole number from 0 to %d", maxWarmQueueSize))
	}
	c.WarmQueueTimeout = p.millis("WARM_QUEUE_TIMEOUT_MS", true)
	c.PassCallbackURL = p.boolean("PASS_CALLBACK_URL")

	c.CallbackAttempts = int(p.positive("CALLBACK_ATTEMPTS"))
	c.CallbackBackoff = p.millis("CALLBACK_BACKOFF_MS", true)
	c.CallbackTimeout = p.millis("CALLBACK_TIMEOUT_MS", false)
	c.CallbackAllowedPrefixes = p.prefixes("CALLBACK_ALLOWED_PREFIXES")

	c.FunctionName = p.str("FUNCTION_NAME")
	c.Subreaper = p.boolean("WATCHDOG_SUBREAPER")
	c.LogLevel = p.level("LOG_LEVEL")
	c.LogFormat = strings.ToLower(p.str("LOG_FORMAT"))
	if c.LogFormat != "json" && c.LogFormat != "text" {
		p.fail("LOG_FORMAT", p.raw("LOG_FORMAT"), "json or text")
	}
	c.FunctionLogFormat = strings.ToLower(strings.TrimSpace(p.str("FUNCTION_LOG_FORMAT")))
	if c.FunctionLogFormat != "wrapped" && c.FunctionLogFormat != "raw" {
		p.fail("FUNCTION_LOG_FORMAT", p.raw("FUNCTION_LOG_FORMAT"), "wrapped (each function line becomes a watchdog record) or raw (lines pass through unchanged)")
	}

	c.RuntimeURL, c.RuntimePort = p.runtimeURL(c.Lifecycle)
	c.HealthURL = p.healthURL(c.RuntimeURL)
	if c.Lifecycle == Server && c.Protocol == ProtocolHTTP && p.err == nil && c.RuntimePort == c.WarmPort {
		p.fail("RUNTIME_URL", c.RuntimeURL, fmt.Sprintf("a port other than WARM_PORT=%d: the watchdog serves /invoke there, so the runtime must listen elsewhere", c.WarmPort))
	}

	c.StdioProtocol = p.stdioProtocol(c)

	if p.err != nil {
		return Config{}, p.err
	}
	return c, nil
}

// stdioProtocol parses STDIO_PROTOCOL: lines needs server mode with the
// STDIO protocol, the only place a process can be kept between invocations.
func (p *parser) stdioProtocol(c Config) StdioProtocol {
	raw := p.raw("STDIO_PROTOCOL")
	switch StdioProtocol(strings.ToLower(strings.TrimSpace(p.str("STDIO_PROTOCOL")))) {
	case StdioPerInvocation:
		return StdioPerInvocation
	case StdioLines:
		if c.Lifecycle != Server || c.Protocol != ProtocolSTDIO {
			p.fail("STDIO_PROTOCOL", raw, fmt.Sprintf("lines needs server mode with the STDIO protocol (WARM=true and EXECUTION_MODE=STDIO), here EXECUTION_MODE=%s in %s mode; remove STDIO_PROTOCOL or set both", c.Mode, c.Lifecycle))
		}
		if c.WarmConcurrency > 1 {
			// The line protocol carries one invocation at a time per
			// process; the queue holds the rest.
			p.fail("WARM_CONCURRENCY", p.raw("WARM_CONCURRENCY"), "1 with STDIO_PROTOCOL=lines: a lines function takes one invocation at a time (the others wait in the queue, WARM_QUEUE_SIZE)")
		}
		return StdioLines
	}
	p.fail("STDIO_PROTOCOL", raw, "per-invocation (the default) or lines")
	return StdioPerInvocation
}

// parser keeps the first error, so that New reports one variable at a time.
type parser struct {
	vals map[string]string
	err  *Error
}

func (p *parser) fail(name, value, accepted string) {
	if p.err == nil {
		p.err = &Error{Var: name, Value: value, Accepted: accepted}
	}
}

// failHidden is fail for a secret: the message does not show the value.
func (p *parser) failHidden(name, accepted string) {
	if p.err == nil {
		p.err = &Error{Var: name, Accepted: accepted, Hidden: true}
	}
}

func (p *parser) raw(name string) string { return p.vals[name] }

// str returns the variable, or its documented default when unset or empty.
func (p *parser) str(name string) string {
	if v, ok := p.vals[name]; ok && v != "" {
		return v
	}
	for _, v := range vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

func (p *parser) integer(name string) (int64, string, bool) {
	s := strings.TrimSpace(p.str(name))
	n, err := strconv.ParseInt(s, 10, 64)
	return n, s, err == nil
}

func (p *parser) millis(name string, zeroOK bool) time.Duration {
	n, s, ok := p.integer(name)
	switch {
	case !ok || n < 0:
		p.fail(name, s, "a whole number of milliseconds, e.g. 30000")
	case n == 0 && !zeroOK:
		p.fail(name, s, "a number of milliseconds greater than 0")
	case n > int64(365*24*time.Hour/time.Millisecond):
		p.fail(name, s, "at most a year of milliseconds")
	}
	return time.Duration(n) * time.Millisecond
}

func (p *parser) positive(name string) int64 {
	n, s, ok := p.integer(name)
	if !ok || n <= 0 {
		p.fail(name, s, "a whole number greater than 0")
	}
	return n
}

func (p *parser) nonNegative(name string) int64 {
	n, s, ok := p.integer(name)
	if !ok || n < 0 || n > 1<<31 {
		p.fail(name, s, "a whole number, 0 or more")
	}
	return n
}

func (p *parser) port(name string) int {
	n, s, ok := p.integer(name)
	if !ok || n < 1 || n > 65535 {
		p.fail(name, s, "a TCP port from 1 to 65535")
	}
	return int(n)
}

func (p *parser) boolean(name string) bool {
	s := strings.TrimSpace(p.str(name))
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.fail(name, s, "true or false")
	}
	return b
}

func (p *parser) path(name string) string {
	s := p.str(name)
	if !strings.HasPrefix(s, "/") {
		p.fail(name, s, "an absolute file path, e.g. /tmp/input.json")
	}
	return s
}

func (p *parser) level(name string) slog.Level {
	s := p.str(name)
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		p.fail(name, s, "debug, info, warn or error")
	}
	return l
}

// url checks an http(s) URL; an empty value is returned as it is, and the
// caller decides whether it is required.
func (p *parser) url(name string) string {
	s := strings.TrimSpace(p.raw(name))
	if s == "" {
		return ""
	}
	if err := checkHTTPURL(s); err != nil {
		p.fail(name, s, "an absolute http:// or https:// URL with a host ("+err.Error()+")")
	}
	return s
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("cannot parse it")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("no host")
	}
	return nil
}

// MaxIDBytes is the longest execution or trace id accepted.
const MaxIDBytes = 1024

// CheckID says what is wrong with an execution or trace id, or "". An id
// travels as an HTTP header (X-Execution-Id, X-Trace-Id), in the function's
// environment, in logs and in the callback URL, so it must be UTF-8 text
// without control characters (C0, DEL, C1), invisible format characters
// (bidirectional overrides, zero-width characters, the byte order mark),
// line separators or surrounding blanks, of at most MaxIDBytes bytes.
func CheckID(id string) string {
	switch {
	case len(id) > MaxIDBytes:
		return fmt.Sprintf("%d bytes, over the %d allowed", len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return "not valid UTF-8"
	case strings.TrimSpace(id) != id:
		return "leading or trailing blanks"
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return "a control character"
		}
	}
	for _, r := range id {
		if invisible(r) {
			return fmt.Sprintf("an invisible or control character (U+%04X)", r)
		}
	}
	return ""
}

// invisible reports whether r is a character a reader of a log, a header
// or a terminal does not see as itself: a C1 control (U+0080 to U+009F;
// U+009B starts a terminal escape), a format character (bidirectional
// overrides and isolates such as U+202E, zero-width characters, the soft
// hyphen, the byte order mark U+FEFF, tags), or a line or paragraph
// separator.
func invisible(r rune) bool {
	return r >= 0x80 && (unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r))
}

// token refuses a secret that no client could ever send as it is: one
// with surrounding blanks (a secret file's trailing newline) or control
// characters. It is refused rather than trimmed, so that the token the
// watchdog compares is exactly the one configured. The value is not shown.
func (p *parser) token(name, value string) {
	bad := strings.TrimSpace(value) != value
	for i := 0; i < len(value) && !bad; i++ {
		bad = value[i] < 0x20 || value[i] == 0x7f
	}
	if bad {
		p.failHidden(name, "a token without surrounding blanks or control characters: clients send it in a header, which can never carry them, so every request would get 401. "+
			"A secret file usually ends in a newline: strip it (e.g. WARM_AUTH_TOKEN=\"$(tr -d '\\n' < token-file)\"), or write the file without one")
	}
}

func (p *parser) id(name, value string) {
	if msg := CheckID(value); msg != "" {
		p.fail(name, value, "UTF-8 text of at most 1024 bytes without control or invisible characters or surrounding blanks (it travels as an HTTP header); this one has "+msg)
	}
}

// prefixes parses a comma-separated list of callback URL prefixes: each an
// absolute http(s) URL with a host and no query, fragment or credentials.
func (p *parser) prefixes(name string) []string {
	raw := p.raw(name)
	if strings.TrimSpace(raw) == "" {
		return nil
	}
	var out []string
	for _, item := range strings.Split(raw, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if err := checkHTTPURL(item); err != nil {
			p.fail(name, raw, "comma-separated absolute http:// or https:// URL prefixes; "+strconv.Quote(item)+" is not one ("+err.Error()+")")
			return nil
		}
		u, _ := url.Parse(item)
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
			p.fail(name, raw, "comma-separated URL prefixes without query, fragment or user:password; "+strconv.Quote(item)+" has one")
			return nil
		}
		out = append(out, item)
	}
	if len(out) == 0 {
		p.fail(name, raw, "at least one http:// or https:// URL prefix, e.g. http://control-plane:8080/v1/internal/executions")
	}
	return out
}

func (p *parser) runtimeURL(lc Lifecycle) (string, int) {
	s := p.url("RUNTIME_URL")
	if s == "" {
		s = p.str("RUNTIME_URL")
		if lc == Server {
			s = fmt.Sprintf("http://127.0.0.1:%d/invoke", defaultServerRuntimePort)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return s, 0
	}
	portText := u.Port()
	if portText == "" {
		portText = "80"
		if u.Scheme == "https" {
			portText = "443"
		}
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		p.fail("RUNTIME_URL", s, "a URL whose port is from 1 to 65535")
	}
	return s, port
}

func (p *parser) healthURL(runtimeURL string) string {
	if s := p.url("HEALTH_URL"); s != "" {
		return s
	}
	u, err := url.Parse(runtimeURL)
	if err != nil {
		return ""
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "/health", "", "", ""
	return u.String()
}
