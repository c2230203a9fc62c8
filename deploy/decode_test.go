package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// object is one decoded document of a manifest stream.
type object struct {
	// where names the file (or generator run) and the document's index.
	where string
	obj   any
}

// kinds maps apiVersion/kind to the API type a document must decode into.
var kinds = map[string]func() any{
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"batch/v1/Job":                           func() any { return &batchv1.Job{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeStream splits a YAML stream into documents and decodes each one
// strictly, as the API server would see what kubectl sends: YAML to JSON
// (duplicate keys fail), then JSON into the API type of its apiVersion and
// kind with unknown fields refused and no type coercion (a number where a
// string belongs fails). Documents holding only comments are skipped.
func decodeStream(name string, data []byte) ([]object, error) {
	var out []object
	for i, doc := range docSeparator.Split(string(data), -1) {
		where := fmt.Sprintf("%s (document %d)", name, i)
		js, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("%s: cannot convert YAML to JSON: %w", where, err)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || string(t) == "null" {
			continue
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(js, &tm); err != nil {
			return nil, fmt.Errorf("%s: not a Kubernetes object: %w", where, err)
		}
		newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("%s: apiVersion %q kind %q is not one these tests know (Deployment, Service, Job, HorizontalPodAutoscaler)", where, tm.APIVersion, tm.Kind)
		}
		obj := newObj()
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			return nil, fmt.Errorf("%s: %s does not decode strictly: %w", where, tm.Kind, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%s: trailing data after the object", where)
		}
		out = append(out, object{where: where + " " + tm.Kind, obj: obj})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no Kubernetes object in it", name)
	}
	return out, nil
}

// envOf returns a container's environment in os.Environ form.
func envOf(c corev1.Container) ([]string, error) {
	var env []string
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			return nil, fmt.Errorf("env %s comes from valueFrom: these manifests set literal values only, so that the watchdog's parser can check them", e.Name)
		}
		env = append(env, e.Name+"="+e.Value)
	}
	return env, nil
}

// envValue returns the value of name in a container's environment.
func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// dockerEnv reads the ENV lines of a Dockerfile that set one variable per
// line (the examples' style), as name => value with quotes removed.
func dockerEnv(dockerfile string) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(dockerfile, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ENV ")
		if !ok || strings.HasSuffix(rest, "\\") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(rest), "=")
		if !ok || strings.ContainsAny(k, " \t") {
			continue
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	return env
}
