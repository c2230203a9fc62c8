package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"unicode/utf8"

	"nanofaas.dev/watchdog/result"
)

// The codes of requests refused before any invocation ran. Invocations
// that ran and failed answer with the result body and its own codes
// (FUNCTION_ERROR, SPAWN_ERROR, STARTUP_ERROR, TIMEOUT).
const (
	CodeBadRequest       = "BAD_REQUEST"
	CodeUnauthorized     = "UNAUTHORIZED"
	CodeNotFound         = "NOT_FOUND"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	CodePayloadTooLarge  = "PAYLOAD_TOO_LARGE"
	// CodeBusy answers a request that finds every slot busy and the queue
	// full (429 with Retry-After).
	CodeBusy = "BUSY"
	// CodeQueueTimeout answers a request that waited for a slot until
	// WARM_QUEUE_TIMEOUT_MS or its timeout passed (429 with Retry-After);
	// the function did not run.
	CodeQueueTimeout = "QUEUE_TIMEOUT"
	CodeShuttingDown = "SHUTTING_DOWN"
	// CodeTooManyConnections answers a connection past WARM_MAX_CONNECTIONS
	// (503, before any request on it is read).
	CodeTooManyConnections = "TOO_MANY_CONNECTIONS"
)

// Header values shared by every response; net/http only reads them.
var (
	hdrJSON       = []string{"application/json"}
	hdrNoStore    = []string{"no-store"}
	hdrRetryAfter = []string{"1"}
	hdrAllowPost  = []string{"POST, GET, HEAD"}
	hdrAllowGet   = []string{"GET, HEAD"}
	hdrClose      = []string{"close"}
	hdrBearer     = []string{`Bearer realm="watchdog"`}
)

var nullJSON = []byte("null")

// StatusFor is the HTTP status of an invocation's result: 200 on success,
// 503 when the runtime could not start, 504 on timeout, 500 otherwise.
func StatusFor(code result.Code) int {
	switch code {
	case "":
		return http.StatusOK
	case result.StartupError:
		return http.StatusServiceUnavailable
	case result.Timeout:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// writeJSON answers status with body, a JSON document.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// writeError answers status with {"error":{"code","message"}}.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	b := make([]byte, 0, 64+len(message))
	b = append(b, `{"error":`...)
	b = appendError(b, code, message)
	b = append(b, '}')
	writeJSON(w, r, status, b)
}

// resultBody is the result body with the execution id first.
func resultBody(executionID string, res *result.Result) []byte {
	rest := res.Marshal()
	b := make([]byte, 0, len(rest)+len(executionID)+20)
	b = append(b, `{"execution_id":`...)
	b = appendJSONString(b, executionID)
	b = append(b, ',')
	return append(b, rest[1:]...)
}

// appendError appends {"code":...,"message":...}.
func appendError(b []byte, code, message string) []byte {
	b = append(b, `{"code":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, message)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Plain text is copied as is;
// anything that needs escaping goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
