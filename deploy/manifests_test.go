package deploy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"nanofaas.dev/emulator"
)

// manifestFiles lists the YAML files under kubernetes/.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("kubernetes", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("cannot list deploy/kubernetes: %v", err)
	}
	if len(files) == 0 {
		t.Fatal("no manifest under deploy/kubernetes")
	}
	return files
}

// TestManifests decodes every document under kubernetes/ strictly and runs
// every check on the whole set (the Service and the HPA are checked against
// the Deployment they refer to, wherever it is).
func TestManifests(t *testing.T) {
	var all []object
	for _, f := range manifestFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("cannot read %s: %v", f, err)
		}
		objs, err := decodeStream(f, data)
		if err != nil {
			t.Error(err)
			continue
		}
		all = append(all, objs...)
	}
	for _, p := range checkObjects(all) {
		t.Error(p)
	}
	// The set shows every shape the README describes.
	want := map[string]bool{"Deployment": false, "Service": false, "HorizontalPodAutoscaler": false, "Job": false}
	for _, o := range all {
		switch o.obj.(type) {
		case *appsv1.Deployment:
			want["Deployment"] = true
		case *corev1.Service:
			want["Service"] = true
		case *autoscalingv2.HorizontalPodAutoscaler:
			want["HorizontalPodAutoscaler"] = true
		case *batchv1.Job:
			want["Job"] = true
		}
	}
	for k, ok := range want {
		if !ok {
			t.Errorf("deploy/kubernetes has no %s", k)
		}
	}
}

// TestManifestsMatchTheirImages: a manifest that names an example image
// sets the WATCHDOG_CMD and EXECUTION_MODE protocol that image's Dockerfile
// sets, so the examples run as they are documented.
func TestManifestsMatchTheirImages(t *testing.T) {
	for _, f := range manifestFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("cannot read %s: %v", f, err)
		}
		objs, err := decodeStream(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			var spec *corev1.PodSpec
			switch obj := o.obj.(type) {
			case *appsv1.Deployment:
				spec = &obj.Spec.Template.Spec
			case *batchv1.Job:
				spec = &obj.Spec.Template.Spec
			default:
				continue
			}
			for _, c := range spec.Containers {
				imageEnv, err := exampleImageEnv(c.Image)
				if err != nil {
					t.Errorf("%s: %v", o.where, err)
					continue
				}
				cmd, _ := envValue(c, "WATCHDOG_CMD")
				if cmd != imageEnv["WATCHDOG_CMD"] {
					t.Errorf("%s: WATCHDOG_CMD %q, the image %s runs %q", o.where, cmd, c.Image, imageEnv["WATCHDOG_CMD"])
				}
			}
		}
	}
}

var exampleImage = regexp.MustCompile(`^nanofaas/example-([a-z0-9-]+):latest$`)

// exampleImageEnv returns the ENV of an example image, following its FROM
// lines through other example images (the warm images extend the HTTP ones).
func exampleImageEnv(image string) (map[string]string, error) {
	m := exampleImage.FindStringSubmatch(image)
	if m == nil {
		return nil, errors.New("image " + image + " is not an example image (nanofaas/example-<name>:latest)")
	}
	data, err := os.ReadFile(filepath.Join("..", "examples", m[1], "Dockerfile"))
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if from, ok := strings.CutPrefix(line, "FROM "); ok && exampleImage.MatchString(strings.Fields(from)[0]) {
			base, err := exampleImageEnv(strings.Fields(from)[0])
			if err != nil {
				return nil, err
			}
			for k, v := range base {
				env[k] = v
			}
		}
	}
	for k, v := range dockerEnv(string(data)) {
		env[k] = v
	}
	return env, nil
}

// TestGeneratedManifests runs the emulator's generator on every example
// that has a manifest, with the image's WATCHDOG_CMD (from its Dockerfile)
// and without one (the image's own), and runs every check on the result.
func TestGeneratedManifests(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "examples", "*", emulator.ManifestFile))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no example manifest found under examples/ (%v)", err)
	}
	for _, mf := range dirs {
		dir := filepath.Dir(mf)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			fn, err := emulator.LoadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			imageEnv, err := exampleImageEnv(fn.Image)
			if err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{imageEnv["WATCHDOG_CMD"], ""} {
				out, err := emulator.KubeManifests(fn, emulator.KubeOptions{Image: fn.Image, Command: cmd, ExecutionID: "exec-test-1"})
				if err != nil {
					t.Fatalf("generator: %v", err)
				}
				objs, err := decodeStream("generated for "+fn.Name, out)
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				for _, p := range checkObjects(objs) {
					t.Error(p)
				}
				wantKinds := "Job"
				if fn.Warm {
					wantKinds = "Deployment Service HorizontalPodAutoscaler"
				}
				var kinds []string
				for _, o := range objs {
					kinds = append(kinds, o.where[strings.LastIndex(o.where, " ")+1:])
				}
				if got := strings.Join(kinds, " "); got != wantKinds {
					t.Errorf("generated %s, want %s", got, wantKinds)
				}
			}
		})
	}
}

// TestGeneratedValuesRoundTrip: whatever a user puts in a name, a command,
// an env value or a payload comes back from the decoded manifest exactly:
// the writer quotes everything YAML could read as structure or another type.
func TestGeneratedValuesRoundTrip(t *testing.T) {
	hostile := []string{
		`plain`, ``, ` leading and trailing `, `"double" and 'single' quotes`, `back\slash \n not a newline`,
		"new\nline", "tab\there", "cr\rhere", `key: value`, `- dash`, `# not a comment`, `&anchor *alias`,
		`{flow: map}`, `[flow, list]`, `yes`, `no`, `on`, `off`, `~`, `null`, `true`, `0x1F`, `0o17`, `1e3`, `.inf`,
		`!!binary aGk=`, `%TAG`, `@at`, "`backtick`", `|`, `>`, `---`, `...`, `éàü ünïcödé 日本語 🙂`,
		"bell\a nul\x00 esc\x1b del\x7f", "c1 \u0085 \u0080 \u009f", "ls \u2028 ps \u2029 bom \ufeff", "\ufffd replacement",
		strings.Repeat("long ", 2000),
	}
	env := map[string]string{}
	for i, v := range hostile {
		env["V"+string(rune('A'+i%26))+strings.Repeat("X", i/26)] = v
	}
	payload := `{"input":"a\"b\\c\nd: e # f","list":[1,2,{"k":"yes"}]}`
	for _, warm := range []bool{true, false} {
		fn := &emulator.Function{Name: "Hostile_fn.v2", Mode: "STDIO", Warm: warm, Env: env, Timeout: emulator.DefaultTimeout}
		cmd := `/app/run --flag="a b" 'single quoted' back\ slash: #x`
		out, err := emulator.KubeManifests(fn, emulator.KubeOptions{
			Image: "registry.example:5000/team/fn@sha256:0123", Command: cmd, ExecutionID: "exec_1.x-y",
			Payload: json.RawMessage(payload), CallbackURL: "http://cp.example:8080/v1/internal/executions?a=b#c",
		})
		if err != nil {
			t.Fatalf("generator: %v", err)
		}
		objs, err := decodeStream("hostile", out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var c corev1.Container
		switch obj := objs[0].obj.(type) {
		case *appsv1.Deployment:
			c = obj.Spec.Template.Spec.Containers[0]
			if obj.Name != "fn-hostile-fn-v2" || obj.Spec.Template.Labels["function"] != "Hostile_fn.v2" {
				t.Errorf("name %q, function label %q", obj.Name, obj.Spec.Template.Labels["function"])
			}
		case *batchv1.Job:
			c = obj.Spec.Template.Spec.Containers[0]
			if v, _ := envValue(c, "INVOCATION_PAYLOAD"); v != payload {
				t.Errorf("INVOCATION_PAYLOAD %q, want %q", v, payload)
			}
		}
		for k, want := range env {
			if got, ok := envValue(c, k); !ok || got != want {
				t.Errorf("env %s: got %q, want %q", k, got, want)
			}
		}
		if got, _ := envValue(c, "WATCHDOG_CMD"); got != cmd {
			t.Errorf("WATCHDOG_CMD %q, want %q", got, cmd)
		}
		if c.Image != "registry.example:5000/team/fn@sha256:0123" {
			t.Errorf("image %q", c.Image)
		}
		for _, p := range checkObjects(objs) {
			t.Error(p)
		}
	}
}

// TestGeneratorRefuses: what would make a broken manifest is refused with
// a message naming the field and what to do.
func TestGeneratorRefuses(t *testing.T) {
	warm := func(env map[string]string) *emulator.Function {
		return &emulator.Function{Name: "f", Mode: "WARM", Warm: true, Env: env, Timeout: emulator.DefaultTimeout}
	}
	for _, tc := range []struct {
		name string
		fn   *emulator.Function
		o    emulator.KubeOptions
		want string
	}{
		{"idle timeout", warm(map[string]string{"WARM_IDLE_TIMEOUT_MS": "60000"}), emulator.KubeOptions{Image: "i"}, "must not exit when idle"},
		{"generator's variable", warm(map[string]string{"FUNCTION_NAME": "x"}), emulator.KubeOptions{Image: "i"}, "env.FUNCTION_NAME"},
		{"no image", warm(nil), emulator.KubeOptions{}, "--image"},
		{"image with a space", warm(nil), emulator.KubeOptions{Image: "a b"}, "--image"},
		{"namespace", warm(nil), emulator.KubeOptions{Image: "i", Namespace: "Bad_NS"}, "--namespace"},
		{"writable", warm(nil), emulator.KubeOptions{Image: "i", Writable: []string{"tmp"}}, "--writable"},
		{"not UTF-8", warm(map[string]string{"K": "\xff"}), emulator.KubeOptions{Image: "i"}, "UTF-8"},
		{"execution id", &emulator.Function{Name: "f", Mode: "STDIO", Timeout: emulator.DefaultTimeout}, emulator.KubeOptions{Image: "i", ExecutionID: "a/b"}, "--execution-id"},
		{"payload", &emulator.Function{Name: "f", Mode: "STDIO", Timeout: emulator.DefaultTimeout}, emulator.KubeOptions{Image: "i", Payload: json.RawMessage(`{`)}, "payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := emulator.KubeManifests(tc.fn, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			var ue *emulator.UsageError
			if !errors.As(err, &ue) {
				t.Errorf("%v is not a usage error (exit 2)", err)
			}
		})
	}
}

// TestChecksCatchMistakes: the decoder and each check fail on a manifest
// that breaks its rule, so a passing run means something.
func TestChecksCatchMistakes(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("kubernetes", "python-fastapi-warm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	job, err := os.ReadFile(filepath.Join("kubernetes", "bash-file-job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hpaFile, err := os.ReadFile(filepath.Join("kubernetes", "python-fastapi-warm-hpa.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hpa := append(append(append([]byte(nil), base...), "\n---\n"...), hpaFile...)
	for _, tc := range []struct {
		name     string
		src      []byte
		old, new string
		want     string // a check name, or part of the decoding error
	}{
		{"unknown field", base, "imagePullPolicy:", "imagePullPolicyy:", "unknown field"},
		{"duplicate key", base, "      terminationGracePeriodSeconds: 64\n", "      terminationGracePeriodSeconds: 64\n      terminationGracePeriodSeconds: 65\n", "duplicate"},
		{"number for a string", base, `value: "30000"`, `value: 30000`, "cannot unmarshal number"},
		{"root", base, "runAsUser: 10001", "runAsUser: 0", "[security]"},
		{"writable root", base, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "[security]"},
		{"escalation", base, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "[security]"},
		{"capabilities", base, "- ALL", "- NET_RAW", "[security]"},
		{"no limits", base, "            limits:\n              cpu: \"1\"\n              memory: 512Mi\n", "", "[resources]"},
		{"bad env", base, "value: \"30000\"", "value: \"soon\"", "[env]"},
		{"one-shot in a Deployment", base, "value: \"true\"\n            - name: WATCHDOG_CMD", "value: \"false\"\n            - name: WATCHDOG_CMD", "[env]"},
		{"idle exit", base, "value: \"0\"\n          ports:", "value: \"300000\"\n          ports:", "[idle]"},
		{"port", base, "containerPort: 8080", "containerPort: 9090", "[ports]"},
		{"readiness on metrics", base, "path: /health", "path: /metrics", "[probes]"},
		{"liveness on health", base, "              path: /metrics\n", "              path: /health\n", "[probes]"},
		{"scrape port", base, "prometheus.io/port: \"8080\"\n    spec:", "prometheus.io/port: \"9090\"\n    spec:", "[scrape]"},
		{"short grace", base, "terminationGracePeriodSeconds: 64", "terminationGracePeriodSeconds: 30", "[grace]"},
		{"long timeout", base, "value: \"30000\"", "value: \"60000\"", "[grace]"},
		{"service port", base, "targetPort: http", "targetPort: 8081", "[service]"},
		{"service selector", base, "  selector:\n    function: python-fastapi-warm\n  ports:", "  selector:\n    function: other\n  ports:", "[service]"},
		{"service links", base, "enableServiceLinks: false", "enableServiceLinks: true", "[env]"},
		{"hpa metric", hpa, "name: watchdog_invocations_in_flight", "name: http_requests_in_flight", "[hpa]"},
		{"hpa target", hpa, "averageValue: 500m", "averageValue: \"2\"", "[hpa]"},
		{"hpa target ref", hpa, "    name: fn-python-fastapi-warm\n  minReplicas", "    name: fn-other\n  minReplicas", "[hpa]"},
		{"restart", job, "restartPolicy: Never", "restartPolicy: OnFailure", "[job]"},
		{"backoff", job, "backoffLimit: 0", "backoffLimit: 6", "[job]"},
		{"deadline", job, "activeDeadlineSeconds: 150", "activeDeadlineSeconds: 40", "[job-deadline]"},
		{"no /tmp", job, "              mountPath: /tmp", "              mountPath: /scratch", "[writable]"},
		{"job grace", job, "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 10", "[grace]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := string(tc.src)
			if !strings.Contains(src, tc.old) {
				t.Fatalf("the manifest no longer contains %q: update the test", tc.old)
			}
			broken := strings.Replace(src, tc.old, tc.new, 1)
			objs, err := decodeStream(tc.name, []byte(broken))
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("decoding failed with %v, want %q", err, tc.want)
				}
				return
			}
			found := false
			for _, p := range checkObjects(objs) {
				found = found || strings.Contains(p, tc.want)
			}
			if !found {
				t.Fatalf("no %s problem reported: %v", tc.want, checkObjects(objs))
			}
		})
	}
}
