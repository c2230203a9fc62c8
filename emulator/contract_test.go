package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"nanofaas.dev/emulator"
)

// contract is the emulator's OpenAPI document, loaded and validated, with
// which every response of the scenarios is checked.
type contract struct {
	doc   *openapi3.T
	paths []contractPath
}

// contractPath is one path template of the document, as a regexp.
type contractPath struct {
	template string
	re       *regexp.Regexp
	names    []string
}

// loadContract parses and validates an OpenAPI document.
func loadContract(data []byte) (*contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("cannot load the OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not valid: %w", err)
	}
	c := &contract{doc: doc}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	for tmpl := range doc.Paths.Map() {
		var names []string
		expr := "^"
		last := 0
		for _, m := range param.FindAllStringSubmatchIndex(tmpl, -1) {
			expr += regexp.QuoteMeta(tmpl[last:m[0]]) + `([^/:]+)`
			names = append(names, tmpl[m[2]:m[3]])
			last = m[1]
		}
		expr += regexp.QuoteMeta(tmpl[last:]) + "$"
		c.paths = append(c.paths, contractPath{template: tmpl, re: regexp.MustCompile(expr), names: names})
	}
	return c, nil
}

// emulatorContract loads the emulator's own document.
func emulatorContract(t testing.TB) *contract {
	t.Helper()
	c, err := loadContract(emulator.OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// check validates one exchange: a response to a declared operation must be
// declared (status, headers, body schema); any other answers 404 or 405
// with the flat error body.
func (c *contract) check(req *http.Request, status int, header http.Header, body []byte) error {
	if req.Method == http.MethodHead {
		return nil
	}
	for _, p := range c.paths {
		m := p.re.FindStringSubmatch(req.URL.Path)
		if m == nil {
			continue
		}
		item := c.doc.Paths.Value(p.template)
		op := item.GetOperation(req.Method)
		if op == nil {
			if status != http.StatusMethodNotAllowed || header.Get("Allow") == "" {
				return fmt.Errorf("%s %s is not in the document: expected 405 with Allow, got %d", req.Method, req.URL.Path, status)
			}
			return c.checkError(body)
		}
		params := map[string]string{}
		for i, n := range p.names {
			params[n] = m[i+1]
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{
				Request: req, PathParams: params,
				Route: &routers.Route{Spec: c.doc, Path: p.template, PathItem: item, Method: req.Method, Operation: op},
			},
			Status:  status,
			Header:  header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		in.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			return fmt.Errorf("%s %s answered %d %s: %w", req.Method, req.URL.Path, status, body, err)
		}
		if status >= 400 && !(strings.HasPrefix(p.template, "/v1/internal/")) {
			return c.checkError(body)
		}
		return nil
	}
	if status != http.StatusNotFound {
		return fmt.Errorf("%s %s: no such path in the document, expected 404, got %d", req.Method, req.URL.Path, status)
	}
	return c.checkError(body)
}

// checkError validates a flat error body.
func (c *contract) checkError(body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("the error body is not JSON: %v: %s", err, body)
	}
	if err := c.doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		return fmt.Errorf("the error body %s is not {\"error\": CODE, \"message\": ...}: %w", bytes.TrimSpace(body), err)
	}
	return nil
}

// upstreamReference is upstream's OpenAPI document, beside the repository
// (shared/reference); it is read, never copied into the project.
const upstreamReference = "../../shared/reference/nanofaas-openapi-0.5.0.yaml"

// TestOpenAPICompatibleWithUpstream checks that the emulator's document
// keeps every upstream path, method and status code, requires every field
// upstream's responses require, and requires no field upstream's requests
// do not.
func TestOpenAPICompatibleWithUpstream(t *testing.T) {
	ours := emulatorContract(t).doc
	data, err := os.ReadFile(upstreamReference)
	if err != nil {
		abs, _ := filepath.Abs(upstreamReference)
		t.Skipf("SKIP: upstream's OpenAPI document is not at %s (%v); nothing to compare with", abs, err)
	}
	up, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatalf("cannot load upstream's document: %v", err)
	}
	if ours.Info.Version != up.Info.Version {
		t.Errorf("version %s, upstream's is %s", ours.Info.Version, up.Info.Version)
	}
	for path, upItem := range up.Paths.Map() {
		item := ours.Paths.Value(path)
		if item == nil {
			t.Errorf("path %s is missing", path)
			continue
		}
		// The emulator answers the admin runtime-config API as upstream
		// does when it is disabled (404): the bodies of the answers it
		// never gives are not repeated in its document.
		bodies := !strings.HasPrefix(path, "/v1/admin/")
		for method, upOp := range upItem.Operations() {
			op := item.GetOperation(method)
			if op == nil {
				t.Errorf("%s %s is missing", method, path)
				continue
			}
			for code, upResp := range upOp.Responses.Map() {
				resp := op.Responses.Value(code)
				if resp == nil {
					t.Errorf("%s %s: status %s is missing", method, path, code)
					continue
				}
				if !bodies {
					continue
				}
				for ct, upMedia := range upResp.Value.Content {
					media := resp.Value.Content.Get(ct)
					if ct == "application/octet-stream" {
						continue // the emulator answers JSON only (README)
					}
					if media == nil {
						t.Errorf("%s %s %s: content %s is missing", method, path, code, ct)
						continue
					}
					compareSchemas(t, fmt.Sprintf("%s %s %s", method, path, code), upMedia.Schema.Value, media.Schema.Value, true)
				}
			}
			if upOp.RequestBody != nil && bodies {
				if op.RequestBody == nil {
					t.Errorf("%s %s: the request body is missing", method, path)
					continue
				}
				for ct, upMedia := range upOp.RequestBody.Value.Content {
					media := op.RequestBody.Value.Content.Get(ct)
					if media == nil {
						t.Errorf("%s %s: request content %s is missing", method, path, ct)
						continue
					}
					compareSchemas(t, fmt.Sprintf("%s %s request", method, path), upMedia.Schema.Value, media.Schema.Value, false)
				}
			}
			for _, p := range upOp.Parameters {
				if op.Parameters.GetByInAndName(p.Value.In, p.Value.Name) == nil {
					t.Errorf("%s %s: parameter %s %s is missing", method, path, p.Value.In, p.Value.Name)
				}
			}
		}
	}
}

// compareSchemas checks ours against upstream's: a response must require at
// least what upstream requires, a request at most; every upstream property
// is there with the same type, and enums of responses stay within
// upstream's.
func compareSchemas(t *testing.T, where string, up, ours *openapi3.Schema, response bool) {
	t.Helper()
	if up == nil || ours == nil {
		return
	}
	if up.Items != nil {
		if ours.Items == nil {
			t.Errorf("%s: not an array", where)
			return
		}
		compareSchemas(t, where+"[]", up.Items.Value, ours.Items.Value, response)
		return
	}
	has := func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	for _, r := range up.Required {
		if response && !has(ours.Required, r) {
			t.Errorf("%s: upstream requires %q, ours does not", where, r)
		}
	}
	if !response {
		for _, r := range ours.Required {
			if !has(up.Required, r) {
				t.Errorf("%s: ours requires %q, upstream does not", where, r)
			}
		}
	}
	for name, upProp := range up.Properties {
		prop := ours.Properties[name]
		if prop == nil {
			t.Errorf("%s: property %s is missing", where, name)
			continue
		}
		if upProp.Value.Type != nil && !upProp.Value.Type.Is("") && (prop.Value.Type == nil || !prop.Value.Type.Permits(upProp.Value.Type.Slice()[0])) {
			t.Errorf("%s: property %s is %v, upstream's is %v", where, name, prop.Value.Type, upProp.Value.Type)
		}
		for _, e := range prop.Value.Enum {
			if response && len(upProp.Value.Enum) > 0 && !containsValue(upProp.Value.Enum, e) {
				t.Errorf("%s: property %s may be %v, which upstream's enum %v lacks", where, name, e, upProp.Value.Enum)
			}
		}
	}
}

func containsValue(list []any, v any) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
