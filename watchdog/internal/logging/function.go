package logging

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// How the function's output lines reach the container log
// (FUNCTION_LOG_FORMAT).
const (
	// FunctionWrapped makes each line the "line" field of a watchdog record
	// ("msg":"function output"), so that a function can never write a line
	// that reads as one of the watchdog's own records.
	FunctionWrapped = "wrapped"
	// FunctionRaw passes the lines through unchanged.
	FunctionRaw = "raw"
)

// FunctionOutput is the sink of one of the function's streams: each Write
// is one line (as the process pumps write them) and becomes one record in
// the watchdog's log format, or passes through unchanged in raw mode.
type FunctionOutput struct {
	w           io.Writer
	text        bool
	raw         bool
	stream      string
	executionID string
}

// NewFunctionOutput returns the sink for the function's stream ("stdout"
// or "stderr") writing to w: records in logFormat ("json" or "text") when
// mode is FunctionWrapped, the lines unchanged when it is FunctionRaw.
func NewFunctionOutput(w io.Writer, logFormat, mode, stream string) *FunctionOutput {
	return &FunctionOutput{w: w, text: logFormat == "text", raw: mode == FunctionRaw, stream: stream}
}

// ForExecution returns a sink whose records carry the execution id.
func (f *FunctionOutput) ForExecution(id string) *FunctionOutput {
	c := *f
	c.executionID = id
	return &c
}

// ForExecution returns w's sink for the execution id when w is a
// *FunctionOutput, or w itself.
func ForExecution(w io.Writer, id string) io.Writer {
	if f, ok := w.(*FunctionOutput); ok && id != "" {
		return f.ForExecution(id)
	}
	return w
}

var recordBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Write writes line (with or without its newline) as one record.
func (f *FunctionOutput) Write(line []byte) (int, error) {
	if f.raw {
		return f.w.Write(line)
	}
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	bp := recordBufs.Get().(*[]byte)
	b := f.appendRecord((*bp)[:0], time.Now(), line)
	_, err := f.w.Write(b)
	if cap(b) <= 128<<10 {
		*bp = b
		recordBufs.Put(bp)
	}
	return n, err
}

func (f *FunctionOutput) appendRecord(b []byte, t time.Time, line []byte) []byte {
	if f.text {
		// The time formats of log/slog's handlers: milliseconds in text.
		b = append(b, "time="...)
		b = t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, ` level=INFO msg="function output" stream=`...)
		b = append(b, f.stream...)
		if f.executionID != "" {
			b = append(b, " execution_id="...)
			if needsQuoting(f.executionID) {
				b = strconv.AppendQuote(b, f.executionID)
			} else {
				b = append(b, f.executionID...)
			}
		}
		b = append(b, " line="...)
		b = appendQuoteBytes(b, line)
		return append(b, '\n')
	}
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"function output","stream":"`...)
	b = append(b, f.stream...)
	if f.executionID != "" {
		b = append(b, `","execution_id":`...)
		b = AppendJSONString(b, f.executionID)
		b = append(b, `,"line":`...)
	} else {
		b = append(b, `","line":`...)
	}
	b = AppendJSONString(b, line)
	return append(b, "}\n"...)
}

// appendQuoteBytes appends s as a Go string literal, like strconv.Quote:
// controls (ANSI escapes included) and invalid UTF-8 are escaped.
func appendQuoteBytes(b, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, string(s))
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// needsQuoting reports whether a text record quotes s, as log/slog's text
// handler does: when it is empty or has a blank, '"', '=' or a rune that is
// not printable.
func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r == ' ' || r == '"' || r == '=' || r == utf8.RuneError || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string. Besides what JSON requires,
// it escapes DEL, the C1 controls (U+0080 to U+009F: U+009B is a terminal's
// CSI), the bidirectional overrides and isolates, the line and paragraph
// separators and the byte order mark, so that nothing in a record can
// steer a terminal or reorder what a reader sees; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func AppendJSONString[S string | []byte](b []byte, s S) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		var r rune
		var size int
		switch v := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(v[i:])
		case []byte:
			r, size = utf8.DecodeRune(v[i:])
		}
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if mustEscape(r) {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// mustEscape reports whether a non-ASCII rune is escaped in a record.
func mustEscape(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f, // C1 controls
		r >= 0x200e && r <= 0x200f, // left-to-right and right-to-left marks
		r >= 0x202a && r <= 0x202e, // bidi embeddings and overrides
		r >= 0x2066 && r <= 0x2069, // bidi isolates
		r == 0x2028 || r == 0x2029, // line and paragraph separators
		r == 0xfeff:                // byte order mark
		return true
	}
	return false
}
