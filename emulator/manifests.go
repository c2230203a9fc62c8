package emulator

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kubernetes manifests for a function, in the shape the nanofaas control
// plane generates (a Deployment and a ClusterIP Service named fn-<name> per
// warm function, a Job per one-shot invocation), hardened. The reasons for
// every setting are in deploy/kubernetes/README.md; deploy/ decodes the
// output strictly into the Kubernetes API types and checks it against the
// watchdog's own configuration parser.

// KubeOptions are the choices a function's manifest does not make.
type KubeOptions struct {
	// Image is the function's container image (required).
	Image string
	// Namespace, when set, is written into every object.
	Namespace string
	// Command is WATCHDOG_CMD inside the image; empty keeps the image's own.
	Command string
	// CallbackURL is the control plane's callback base URL (CALLBACK_URL);
	// empty means DefaultKubeCallbackURL.
	CallbackURL string
	// ExecutionID is the one-shot Job's EXECUTION_ID; empty means a fresh one.
	ExecutionID string
	// Payload is the one-shot Job's INVOCATION_PAYLOAD; nil means the
	// function's default payload.
	Payload json.RawMessage
	// Writable are extra directories the runtime writes to, each mounted
	// from an emptyDir (the root filesystem is read-only).
	Writable []string
	// MaxReplicas bounds the HorizontalPodAutoscaler; 0 means 5.
	MaxReplicas int
}

// DefaultKubeCallbackURL is CALLBACK_URL when KubeOptions.CallbackURL is
// empty: the control plane's Service in the nanofaas namespace.
const DefaultKubeCallbackURL = "http://nanofaas-control-plane.nanofaas.svc.cluster.local:8080/v1/internal/executions"

// KubePort is the watchdog's port in the pod (WARM_PORT): /invoke, /health
// and /metrics.
const KubePort = 8080

// Fixed parts of the budgets below, from the watchdog's shutdown sequence
// (README, "SIGTERM, SIGINT, SIGQUIT").
const (
	// kubePreStop is the preStop sleep: the pod keeps serving while the
	// endpoints controller and kube-proxy stop sending it traffic.
	kubePreStop = 5 * time.Second
	// kubeShutdownFixed is the HTTP server's close (up to 5 s) plus the wait
	// for callbacks still being retried (up to 10 s).
	kubeShutdownFixed = 15 * time.Second
	// kubeMargin is added to every computed bound.
	kubeMargin = 10 * time.Second
	// kubeJobStart covers scheduling, the image pull and the container start,
	// which a Job's activeDeadlineSeconds counts too.
	kubeJobStart = 60 * time.Second
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// labelValue matches a Kubernetes label value.
var labelValue = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$`)

// KubeName is the name of a function's Deployment, Service and HPA (and the
// prefix of its Jobs): "fn-" and the function's name as a DNS label (lower
// case, '.' and '_' turned into '-').
func KubeName(function string) string {
	n := strings.ToLower(function)
	n = strings.NewReplacer(".", "-", "_", "-").Replace(n)
	n = strings.Trim("fn-"+n, "-")
	if len(n) > 56 { // room for the Job's generated suffix
		n = strings.TrimRight(n[:56], "-")
	}
	return n
}

// KubeManifests writes the Kubernetes manifests of fn as one YAML stream: a
// Deployment, a Service and a HorizontalPodAutoscaler for a warm function,
// a Job (one invocation) for a one-shot one.
func KubeManifests(fn *Function, o KubeOptions) ([]byte, error) {
	g, err := newKubeGen(fn, o)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Kubernetes manifests of function %q (emulator manifests).\n", fn.Name)
	fmt.Fprintf(&b, "# Why each setting: deploy/kubernetes/README.md in the nanofaas watchdog repository.\n")
	if fn.Warm {
		b.WriteString("---\n")
		writeDoc(&b, g.deployment())
		b.WriteString("---\n")
		writeDoc(&b, g.service())
		b.WriteString("---\n")
		writeDoc(&b, g.hpa())
	} else {
		fmt.Fprintf(&b, "# One invocation: create it with kubectl create -f (generateName), not apply.\n")
		b.WriteString("---\n")
		writeDoc(&b, g.job())
	}
	return []byte(b.String()), nil
}

// kubeGen holds what the objects share.
type kubeGen struct {
	fn   *Function
	o    KubeOptions
	name string
	env  map[string]string
	// keys is the order of env: the generator's own first, then the
	// function's, sorted.
	keys []string
}

func newKubeGen(fn *Function, o KubeOptions) (*kubeGen, error) {
	bad := func(what, format string, args ...any) error {
		return &UsageError{Err: fmt.Errorf("cannot write manifests: %s: %s", what, fmt.Sprintf(format, args...))}
	}
	if strings.TrimSpace(o.Image) == "" || strings.ContainsAny(o.Image, " \t\r\n") || !utf8.ValidString(o.Image) {
		return nil, bad("--image", "%q is not an image reference: give the image the cluster pulls, e.g. registry.example/team/fn:1.0", o.Image)
	}
	if o.Namespace != "" && !dnsLabel.MatchString(o.Namespace) {
		return nil, bad("--namespace", "%q is not a namespace name: lower-case letters, digits and '-', at most 63", o.Namespace)
	}
	if o.CallbackURL == "" {
		o.CallbackURL = DefaultKubeCallbackURL
	}
	if o.MaxReplicas == 0 {
		o.MaxReplicas = 5
	}
	if o.MaxReplicas < 1 {
		return nil, bad("--max-replicas", "%d: at least 1", o.MaxReplicas)
	}
	if !labelValue.MatchString(fn.Name) {
		return nil, bad("name", "%q cannot be a Kubernetes label value: at most 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit", fn.Name)
	}
	for _, w := range o.Writable {
		if !strings.HasPrefix(w, "/") || path.Clean(w) != w || w == "/" || !utf8.ValidString(w) {
			return nil, bad("--writable", "%q: an absolute, clean directory path other than /, e.g. /tmp", w)
		}
	}
	g := &kubeGen{fn: fn, o: o, name: KubeName(fn.Name), env: map[string]string{}}
	set := func(k, v string) {
		g.env[k] = v
		g.keys = append(g.keys, k)
	}
	set("FUNCTION_NAME", fn.Name)
	set("EXECUTION_MODE", fn.Protocol())
	set("TIMEOUT_MS", strconv.FormatInt(fn.Timeout.Milliseconds(), 10))
	if o.Command != "" {
		set("WATCHDOG_CMD", o.Command)
	}
	set("CALLBACK_URL", o.CallbackURL)
	if fn.Warm {
		set("WARM", "true")
		set("WARM_PORT", strconv.Itoa(KubePort))
		set("WARM_IDLE_TIMEOUT_MS", "0")
	} else {
		if o.ExecutionID == "" {
			o.ExecutionID = NewExecutionID()
			g.o.ExecutionID = o.ExecutionID
		}
		if !labelValue.MatchString(o.ExecutionID) {
			return nil, bad("--execution-id", "%q cannot be a Kubernetes label value: at most 63 letters, digits, '.', '_' or '-'", o.ExecutionID)
		}
		payload := o.Payload
		if payload == nil {
			payload = fn.DefaultPayload()
		}
		compact, err := CompactJSON(payload, "the payload")
		if err != nil {
			return nil, &UsageError{Err: fmt.Errorf("cannot write manifests: %w", err)}
		}
		set("EXECUTION_ID", o.ExecutionID)
		set("INVOCATION_PAYLOAD", string(compact))
	}
	var own []string
	for k := range fn.Env {
		if _, taken := g.env[k]; taken {
			if k == "WARM_IDLE_TIMEOUT_MS" {
				return nil, bad("env.WARM_IDLE_TIMEOUT_MS", "a warm watchdog on Kubernetes must not exit when idle (kubelet would restart it, then back off): remove it; scaling to zero is the control plane's or the autoscaler's job")
			}
			return nil, bad("env."+k, "set by the generator; remove it from the manifest's env")
		}
		own = append(own, k)
	}
	sort.Strings(own)
	for _, k := range own {
		set(k, fn.Env[k])
	}
	for _, k := range g.keys {
		if !utf8.ValidString(g.env[k]) {
			return nil, bad("env."+k, "not valid UTF-8: a Kubernetes env value is UTF-8 text")
		}
	}
	if !utf8.ValidString(o.Command) || !utf8.ValidString(o.CallbackURL) {
		return nil, bad("--cmd or --callback-url", "not valid UTF-8")
	}
	return g, nil
}

// millis reads one of the function's timing variables, or its default.
func (g *kubeGen) millis(name string, def time.Duration) time.Duration {
	if v, ok := g.env[name]; ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
			return time.Duration(n) * time.Millisecond
		}
	}
	return def
}

func seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// drainGrace is terminationGracePeriodSeconds of a warm pod: the preStop
// sleep, then the drain: the invocation in flight (its timeout, then the
// stop of its runtime), the HTTP server's close, the runtime's stop and the
// callbacks still pending.
func (g *kubeGen) drainGrace() int64 {
	timeout := g.fn.Timeout
	kill := g.millis("KILL_GRACE_MS", 2*time.Second)
	return seconds(kubePreStop + timeout + 2*kill + kubeShutdownFixed + kubeMargin)
}

// delivery bounds the delivery of one result: every attempt's timeout plus
// the backoffs between them (each at most 5 s).
func (g *kubeGen) delivery() time.Duration {
	attempts := int64(3)
	if v, err := strconv.ParseInt(g.env["CALLBACK_ATTEMPTS"], 10, 64); err == nil && v > 0 {
		attempts = v
	}
	each := g.millis("CALLBACK_TIMEOUT_MS", 10*time.Second)
	return time.Duration(attempts)*each + time.Duration(attempts-1)*5*time.Second
}

func (g *kubeGen) labels() ymap {
	return ymap{{key: "app", value: "nanofaas"}, {key: "function", value: g.fn.Name}}
}

func (g *kubeGen) meta(name string, extra ...ykv) ymap {
	m := ymap{{key: "name", value: name}}
	if g.o.Namespace != "" {
		m = append(m, ykv{key: "namespace", value: g.o.Namespace})
	}
	return append(m, append(ymap{{key: "labels", value: g.labels()}}, extra...)...)
}

func (g *kubeGen) envList() ylist {
	var l ylist
	for _, k := range g.keys {
		l = append(l, ymap{{key: "name", value: k}, {key: "value", value: g.env[k]}})
	}
	return l
}

// writableDirs are the directories mounted from emptyDirs: INPUT_FILE's and
// OUTPUT_FILE's in FILE mode, and the extra ones asked for.
func (g *kubeGen) writableDirs() []string {
	seen := map[string]bool{}
	var dirs []string
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	if g.fn.Protocol() == "FILE" {
		for _, v := range []struct{ name, def string }{{"INPUT_FILE", "/tmp/input.json"}, {"OUTPUT_FILE", "/tmp/output.json"}} {
			f := g.env[v.name]
			if f == "" {
				f = v.def
			}
			add(path.Dir(f))
		}
	}
	for _, w := range g.o.Writable {
		add(w)
	}
	return dirs
}

func (g *kubeGen) container(server bool) ymap {
	c := ymap{
		{key: "name", value: "function"},
		{key: "image", value: g.o.Image},
		{key: "imagePullPolicy", value: "IfNotPresent"},
		{key: "env", value: g.envList()},
	}
	if server {
		c = append(c,
			ykv{key: "ports", value: ylist{ymap{{key: "name", value: "http"}, {key: "containerPort", value: KubePort}, {key: "protocol", value: "TCP"}}}},
			ykv{key: "readinessProbe", comment: "200 only while the runtime is ready: 503 while it starts, restarts, cannot start, or the watchdog drains.",
				value: ymap{
					{key: "httpGet", value: ymap{{key: "path", value: "/health"}, {key: "port", value: "http"}}},
					{key: "periodSeconds", value: 2},
					{key: "timeoutSeconds", value: 2},
					{key: "failureThreshold", value: 1},
					{key: "successThreshold", value: 1},
				}},
			ykv{key: "livenessProbe", comment: "The watchdog's own HTTP server, whatever the runtime's state: a restarting runtime is\nthe watchdog's job, and a pod restart would not help a runtime that cannot start.",
				value: ymap{
					{key: "httpGet", value: ymap{{key: "path", value: "/metrics"}, {key: "port", value: "http"}}},
					{key: "periodSeconds", value: 10},
					{key: "timeoutSeconds", value: 5},
					{key: "failureThreshold", value: 3},
				}},
			ykv{key: "lifecycle", value: ymap{{key: "preStop", value: ymap{{key: "sleep", value: ymap{{key: "seconds", value: seconds(kubePreStop)}}}}}}},
		)
	}
	c = append(c,
		ykv{key: "resources", value: ymap{
			{key: "requests", value: ymap{{key: "cpu", value: "100m"}, {key: "memory", value: "128Mi"}}},
			{key: "limits", value: ymap{{key: "cpu", value: "1"}, {key: "memory", value: "512Mi"}}},
		}},
		ykv{key: "securityContext", value: ymap{
			{key: "runAsNonRoot", value: true},
			{key: "allowPrivilegeEscalation", value: false},
			{key: "readOnlyRootFilesystem", value: true},
			{key: "capabilities", value: ymap{{key: "drop", value: ylist{"ALL"}}}},
			{key: "seccompProfile", value: ymap{{key: "type", value: "RuntimeDefault"}}},
		}},
	)
	if dirs := g.writableDirs(); len(dirs) > 0 {
		var mounts ylist
		for i, d := range dirs {
			mounts = append(mounts, ymap{{key: "name", value: "scratch-" + strconv.Itoa(i)}, {key: "mountPath", value: d}})
		}
		c = append(c, ykv{key: "volumeMounts", value: mounts})
	}
	return c
}

func (g *kubeGen) podSpec(server bool, grace int64) ymap {
	s := ymap{}
	if !server {
		s = append(s, ykv{key: "restartPolicy", value: "Never"})
	}
	s = append(s,
		ykv{key: "terminationGracePeriodSeconds", value: grace},
		ykv{key: "automountServiceAccountToken", value: false},
		ykv{key: "enableServiceLinks", value: false},
		ykv{key: "securityContext", value: ymap{
			{key: "runAsNonRoot", value: true},
			{key: "seccompProfile", value: ymap{{key: "type", value: "RuntimeDefault"}}},
		}},
		ykv{key: "containers", value: ylist{g.container(server)}},
	)
	if dirs := g.writableDirs(); len(dirs) > 0 {
		var vols ylist
		for i := range dirs {
			vols = append(vols, ymap{{key: "name", value: "scratch-" + strconv.Itoa(i)}, {key: "emptyDir", value: ymap{{key: "sizeLimit", value: "64Mi"}}}})
		}
		s = append(s, ykv{key: "volumes", value: vols})
	}
	return s
}

func (g *kubeGen) scrapeAnnotations() ymap {
	return ymap{
		{key: "prometheus.io/scrape", value: "true"},
		{key: "prometheus.io/path", value: "/metrics"},
		{key: "prometheus.io/port", value: strconv.Itoa(KubePort)},
	}
}

func (g *kubeGen) deployment() ymap {
	return ymap{
		{key: "apiVersion", value: "apps/v1"},
		{key: "kind", value: "Deployment"},
		{key: "metadata", value: g.meta(g.name)},
		{key: "spec", value: ymap{
			{key: "replicas", value: 1},
			{key: "selector", value: ymap{{key: "matchLabels", value: ymap{{key: "function", value: g.fn.Name}}}}},
			{key: "template", value: ymap{
				{key: "metadata", value: ymap{
					{key: "labels", value: g.labels()},
					{key: "annotations", value: g.scrapeAnnotations()},
				}},
				{key: "spec", value: g.podSpec(true, g.drainGrace())},
			}},
		}},
	}
}

func (g *kubeGen) service() ymap {
	return ymap{
		{key: "apiVersion", value: "v1"},
		{key: "kind", value: "Service"},
		{key: "metadata", value: g.meta(g.name, ykv{key: "annotations", value: g.scrapeAnnotations()})},
		{key: "spec", value: ymap{
			{key: "type", value: "ClusterIP"},
			{key: "selector", value: ymap{{key: "function", value: g.fn.Name}}},
			{key: "ports", value: ylist{ymap{
				{key: "name", value: "http"},
				{key: "port", value: KubePort},
				{key: "targetPort", value: "http"},
				{key: "protocol", value: "TCP"},
			}}},
		}},
	}
}

func (g *kubeGen) hpa() ymap {
	return ymap{
		{key: "apiVersion", value: "autoscaling/v2"},
		{key: "kind", value: "HorizontalPodAutoscaler"},
		{key: "metadata", value: g.meta(g.name)},
		{key: "spec", value: ymap{
			{key: "scaleTargetRef", value: ymap{{key: "apiVersion", value: "apps/v1"}, {key: "kind", value: "Deployment"}, {key: "name", value: g.name}}},
			{key: "minReplicas", value: 1},
			{key: "maxReplicas", value: g.o.MaxReplicas},
			{key: "metrics", comment: "Each pod runs one invocation at a time: scale out when, on average, pods are more\nthan half busy. Needs the custom metrics API (e.g. the Prometheus adapter).",
				value: ylist{ymap{
					{key: "type", value: "Pods"},
					{key: "pods", value: ymap{
						{key: "metric", value: ymap{{key: "name", value: "watchdog_invocations_in_flight"}}},
						{key: "target", value: ymap{{key: "type", value: "AverageValue"}, {key: "averageValue", value: "500m"}}},
					}},
				}}},
		}},
	}
}

func (g *kubeGen) job() ymap {
	ready := time.Duration(0)
	if g.fn.Protocol() == "HTTP" {
		ready = g.millis("READY_TIMEOUT_MS", 10*time.Second)
	}
	kill := g.millis("KILL_GRACE_MS", 2*time.Second)
	run := ready + g.fn.Timeout + kill + g.delivery()
	meta := ymap{{key: "generateName", value: g.name + "-"}}
	if g.o.Namespace != "" {
		meta = append(meta, ykv{key: "namespace", value: g.o.Namespace})
	}
	labels := append(g.labels(), ykv{key: "execution-id", value: g.o.ExecutionID})
	meta = append(meta, ykv{key: "labels", value: labels})
	return ymap{
		{key: "apiVersion", value: "batch/v1"},
		{key: "kind", value: "Job"},
		{key: "metadata", value: meta},
		{key: "spec", value: ymap{
			{key: "backoffLimit", value: 0, comment: "One attempt: a second run would execute the invocation twice."},
			{key: "activeDeadlineSeconds", value: seconds(kubeJobStart + run + kubeMargin)},
			{key: "ttlSecondsAfterFinished", value: 600},
			{key: "template", value: ymap{
				{key: "metadata", value: ymap{{key: "labels", value: labels}}},
				{key: "spec", value: g.podSpec(false, seconds(kill+g.delivery()+kubeMargin))},
			}},
		}},
	}
}
