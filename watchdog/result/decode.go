package result

import (
	"encoding/json"
	"io"
)

// The reading side of a result: what a callback receiver, the emulator or
// the conformance suite needs to decode and describe a body a watchdog sent.

// NoDuration is the DurationMs of a decoded result that carries no
// duration_ms: another watchdog's body (the seed's has only success, output
// and error), where a duration of 0 would be a claim it did not make.
const NoDuration int64 = -1

// Decode decodes data, which must be one result body (json.Unmarshal's
// rules). duration_ms is optional: without it, DurationMs is NoDuration.
func Decode(data []byte) (Result, error) {
	r := Result{DurationMs: NoDuration}
	err := json.Unmarshal(data, &r)
	return r, err
}

// DecodeFrom decodes the first JSON document that r holds as a result, as a
// json.Decoder does: what follows the document is not read. duration_ms is
// optional, as with Decode.
func DecodeFrom(r io.Reader) (Result, error) {
	res := Result{DurationMs: NoDuration}
	err := json.NewDecoder(r).Decode(&res)
	return res, err
}

// Status is "success", or the error code of a failed result
// (FUNCTION_ERROR when a failed result names none).
func (r Result) Status() string {
	if r.Success {
		return "success"
	}
	if r.Error != nil && r.Error.Code != "" {
		return string(r.Error.Code)
	}
	return string(FunctionError)
}
