package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Envelope keys are matched exactly: encoding/json would take
// "Callback_URL" or "callbac\u212a_url" (Kelvin sign) for callback_url and
// keep the last of duplicate keys, so a gateway that filters the text
// "callback_url" could be bypassed.
func TestParseEnvelopeKeysAreExactAndUnique(t *testing.T) {
	s := newParseServer(t)
	for body, want := range map[string]string{
		`{"execution_id":"a","Callback_URL":"http://evil/"}`:                         `"Callback_URL" is not a key of the envelope`,
		`{"execution_id":"a","callbac\u212a_url":"http://evil/"}`:                    "is not a key of the envelope",
		`{"EXECUTION_ID":"a"}`:                                                       `"EXECUTION_ID" is not a key of the envelope`,
		`{"execution_id":"a","execution_id":"b"}`:                                    `"execution_id" appears twice`,
		`{"execution_id":"a","callback_url":"http://x/","callback_url":"http://y/"}`: `"callback_url" appears twice`,
		`{"execution_id":"a","extra":1,"extra":2}`:                                   `"extra" appears twice`,
		`{"execution_id":"a","callback\u005furl":"http://evil/"}`:                    "spelled with escapes",
		`{"execution_id":"a","payload":{"x":1}} {"execution_id":"b"}`:                "not an invocation envelope",
	} {
		var req request
		r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
		if msg := s.parse(r, []byte(body), &req); !strings.Contains(msg, want) {
			t.Errorf("parse(%s) = %q, want it to say %q", body, msg, want)
		}
	}
	// Keys of the payload itself are the function's business.
	var req request
	r := httptest.NewRequest(http.MethodPost, "/invoke", nil)
	if msg := s.parse(r, []byte(`{"execution_id":"a","payload":{"A":1,"a":2,"a":3}}`), &req); msg != "" || string(req.payload) != `{"A":1,"a":2,"a":3}` {
		t.Errorf("payload keys: %q, payload %s", msg, req.payload)
	}
}
