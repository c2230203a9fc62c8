package result

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	code := 3
	for _, tc := range []struct {
		name, body string
		want       Result
	}{
		{"success", `{"success":true,"output":{"x":1},"error":null,"exit_code":0,"duration_ms":12}`,
			Result{Success: true, Output: []byte(`{"x":1}`), ExitCode: new(int), DurationMs: 12}},
		{"failure", `{"success":false,"output":null,"error":{"code":"TIMEOUT","message":"late"},"exit_code":3,"duration_ms":0}`,
			Result{Output: []byte(`null`), Error: &Error{Code: Timeout, Message: "late"}, ExitCode: &code}},
		{"the seed's three fields", `{"success":true,"output":"ok","error":null}`,
			Result{Success: true, Output: []byte(`"ok"`), DurationMs: NoDuration}},
		{"duration_ms null", `{"success":true,"output":1,"duration_ms":null}`,
			Result{Success: true, Output: []byte(`1`), DurationMs: NoDuration}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
			from, err := DecodeFrom(strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, from); diff != "" {
				t.Errorf("DecodeFrom differs from Decode (-Decode +DecodeFrom):\n%s", diff)
			}
		})
	}
}

// TestDecodeTrailing: Decode takes exactly one document, DecodeFrom the
// first one.
func TestDecodeTrailing(t *testing.T) {
	body := `{"success":true,"output":1,"error":null} trailing`
	if _, err := Decode([]byte(body)); err == nil {
		t.Errorf("Decode(%q) succeeded, want an error", body)
	}
	if r, err := DecodeFrom(strings.NewReader(body)); err != nil || !r.Success {
		t.Errorf("DecodeFrom(%q) = %+v, %v; want the first document", body, r, err)
	}
	for _, bad := range []string{``, `nonsense`, `{"success":"yes"}`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) succeeded, want an error", bad)
		}
	}
}

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		r    Result
		want string
	}{
		{Success(nil), "success"},
		{Failure(Timeout, "late"), "TIMEOUT"},
		{Result{Error: &Error{}}, "FUNCTION_ERROR"},
		{Result{}, "FUNCTION_ERROR"},
	} {
		if got := tc.r.Status(); got != tc.want {
			t.Errorf("%+v.Status() = %q, want %q", tc.r, got, tc.want)
		}
	}
}
