package deploy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"nanofaas.dev/devkit/freeport"
	"nanofaas.dev/watchdog"
	"nanofaas.dev/watchdog/config"
)

// The watchdog's fixed shutdown bounds (README, "SIGTERM, SIGINT, SIGQUIT";
// watchdog/server: shutdownTimeout and deliveryDrainTimeout).
const (
	serverCloseBound   = 5 * time.Second
	callbackDrainBound = 10 * time.Second
	// callbackBackoffCap is the cap of the backoff between callback attempts.
	callbackBackoffCap = 5 * time.Second
)

// The paths of the watchdog's server (README, "Endpoints").
const (
	healthPath  = "/health"
	metricsPath = "/metrics"
)

// The checks below are named; every problem starts with the check's name,
// so that a failure says which rule a manifest breaks.
const (
	checkNames       = "names"
	checkSecurity    = "security"
	checkResources   = "resources"
	checkEnv         = "env"
	checkWritable    = "writable"
	checkPorts       = "ports"
	checkProbes      = "probes"
	checkScrape      = "scrape"
	checkIdle        = "idle"
	checkGrace       = "grace"
	checkService     = "service"
	checkHPA         = "hpa"
	checkJob         = "job"
	checkJobDeadline = "job-deadline"
)

// problems collects what is wrong with a set of objects.
type problems struct{ list []string }

func (p *problems) add(where, check, format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf("%s: [%s] %s", where, check, fmt.Sprintf(format, args...)))
}

// checkObjects runs every check on the objects of one manifest set (a
// Service and an HPA are checked against the Deployments of the same set).
func checkObjects(objs []object) []string {
	var p problems
	var deployments []*appsv1.Deployment
	for _, o := range objs {
		if d, ok := o.obj.(*appsv1.Deployment); ok {
			deployments = append(deployments, d)
		}
	}
	for _, o := range objs {
		switch obj := o.obj.(type) {
		case *appsv1.Deployment:
			checkMeta(&p, o.where, obj.Name, obj.GenerateName, obj.Labels, obj.Annotations)
			checkDeployment(&p, o.where, obj)
		case *corev1.Service:
			checkMeta(&p, o.where, obj.Name, obj.GenerateName, obj.Labels, obj.Annotations)
			checkServiceObj(&p, o.where, obj, deployments)
		case *autoscalingv2.HorizontalPodAutoscaler:
			checkMeta(&p, o.where, obj.Name, obj.GenerateName, obj.Labels, obj.Annotations)
			checkHPAObj(&p, o.where, obj, deployments)
		case *batchv1.Job:
			checkMeta(&p, o.where, obj.Name, obj.GenerateName, obj.Labels, obj.Annotations)
			checkJobObj(&p, o.where, obj)
		}
	}
	return p.list
}

// checkMeta: the name (or generateName prefix) is a DNS-1123 label, label
// keys and values and annotation keys are what the API server accepts.
func checkMeta(p *problems, where, name, generate string, lbls, annotations map[string]string) {
	switch {
	case name == "" && generate == "":
		p.add(where, checkNames, "neither name nor generateName")
	case name != "":
		for _, e := range validation.IsDNS1123Label(name) {
			p.add(where, checkNames, "name %q: %s", name, e)
		}
	default:
		// The API server appends 5 characters to generateName.
		for _, e := range validation.IsDNS1123Label(generate + "abcde") {
			p.add(where, checkNames, "generateName %q: %s", generate, e)
		}
	}
	for k, v := range lbls {
		for _, e := range validation.IsQualifiedName(k) {
			p.add(where, checkNames, "label key %q: %s", k, e)
		}
		for _, e := range validation.IsValidLabelValue(v) {
			p.add(where, checkNames, "label %s=%q: %s", k, v, e)
		}
	}
	for k := range annotations {
		for _, e := range validation.IsQualifiedName(k) {
			p.add(where, checkNames, "annotation key %q: %s", k, e)
		}
	}
}

// checkPod checks what every function pod needs and returns the watchdog's
// configuration parsed from the container's environment (nil when it does
// not parse).
func checkPod(p *problems, where string, spec corev1.PodSpec, podLabels map[string]string) (*config.Config, *corev1.Container) {
	if len(spec.Containers) != 1 {
		p.add(where, checkNames, "%d containers: a function pod has one, the watchdog's", len(spec.Containers))
		return nil, nil
	}
	c := &spec.Containers[0]
	if len(spec.InitContainers) > 0 {
		p.add(where, checkSecurity, "init containers are not part of the function's shape")
	}

	// Security.
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		p.add(where, checkSecurity, "container %s has no securityContext", c.Name)
		csc = &corev1.SecurityContext{}
	}
	if !(isTrue(csc.RunAsNonRoot) || (csc.RunAsNonRoot == nil && isTrue(psc.RunAsNonRoot))) {
		p.add(where, checkSecurity, "runAsNonRoot is not true")
	}
	if (csc.RunAsUser != nil && *csc.RunAsUser == 0) || (psc.RunAsUser != nil && *psc.RunAsUser == 0) {
		p.add(where, checkSecurity, "runAsUser 0 (root)")
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		p.add(where, checkSecurity, "allowPrivilegeEscalation is not false")
	}
	if isTrue(csc.Privileged) {
		p.add(where, checkSecurity, "privileged")
	}
	if !isTrue(csc.ReadOnlyRootFilesystem) {
		p.add(where, checkSecurity, "readOnlyRootFilesystem is not true")
	}
	dropsAll := false
	if csc.Capabilities != nil {
		for _, d := range csc.Capabilities.Drop {
			dropsAll = dropsAll || d == "ALL"
		}
		if len(csc.Capabilities.Add) > 0 {
			p.add(where, checkSecurity, "capabilities added: %v", csc.Capabilities.Add)
		}
	}
	if !dropsAll {
		p.add(where, checkSecurity, "capabilities.drop does not contain ALL")
	}
	seccomp := csc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.add(where, checkSecurity, "seccompProfile is not RuntimeDefault")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		p.add(where, checkSecurity, "host namespaces shared")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		p.add(where, checkSecurity, "automountServiceAccountToken is not false: a function needs no API credentials")
	}
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		p.add(where, checkEnv, "enableServiceLinks is not false: service link variables (a Service named warm sets WARM_PORT=tcp://...) would reach the watchdog's configuration")
	}

	// Resources.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[r]
		lim, hasLim := c.Resources.Limits[r]
		if !hasReq {
			p.add(where, checkResources, "no %s request", r)
		}
		if !hasLim {
			p.add(where, checkResources, "no %s limit", r)
		}
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			p.add(where, checkResources, "%s request %s over its limit %s", r, req.String(), lim.String())
		}
	}

	// Environment: names, no duplicates, and the watchdog's own parser.
	seen := map[string]bool{}
	for _, e := range c.Env {
		for _, msg := range validation.IsEnvVarName(e.Name) {
			p.add(where, checkEnv, "env name %q: %s", e.Name, msg)
		}
		if seen[e.Name] {
			p.add(where, checkEnv, "%s is set twice (the last one wins: say it once)", e.Name)
		}
		seen[e.Name] = true
	}
	env, err := envOf(*c)
	if err != nil {
		p.add(where, checkEnv, "%v", err)
		return nil, c
	}
	cfg, err := config.New(env)
	if err != nil {
		p.add(where, checkEnv, "the watchdog refuses this environment: %v", err)
		return nil, c
	}
	if fn := podLabels["function"]; fn != "" && cfg.FunctionName != fn {
		p.add(where, checkEnv, "FUNCTION_NAME=%q, the pod's function label is %q: metrics would be labelled with another name", cfg.FunctionName, fn)
	}

	// Writable paths: FILE mode writes INPUT_FILE and reads OUTPUT_FILE;
	// with a read-only root filesystem their directories must be mounted
	// from writable emptyDirs.
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			p.add(where, checkWritable, "volumeMount %s names no volume", m.Name)
		}
	}
	writable := func(file string) bool {
		dir := path.Dir(file)
		for _, m := range c.VolumeMounts {
			v, ok := volumes[m.Name]
			if !ok || m.ReadOnly || v.EmptyDir == nil {
				continue
			}
			if dir == m.MountPath || strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/") {
				return true
			}
		}
		return false
	}
	if cfg.Protocol == config.ProtocolFILE && isTrue(csc.ReadOnlyRootFilesystem) {
		for _, f := range []struct{ name, path string }{{"INPUT_FILE", cfg.InputFile}, {"OUTPUT_FILE", cfg.OutputFile}} {
			if !writable(f.path) {
				p.add(where, checkWritable, "FILE mode with a read-only root filesystem: %s=%s is not in a writable emptyDir mount", f.name, f.path)
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.EmptyDir == nil {
			p.add(where, checkWritable, "volume %s is not an emptyDir: a function needs scratch space only", v.Name)
		} else if v.EmptyDir.SizeLimit == nil {
			p.add(where, checkWritable, "emptyDir %s has no sizeLimit", v.Name)
		}
	}
	return &cfg, c
}

// portOf resolves a probe's or a Service's port against the container.
func portOf(c *corev1.Container, port intstr.IntOrString) (int, bool) {
	if port.Type == intstr.Int {
		return int(port.IntVal), true
	}
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal {
			return int(cp.ContainerPort), true
		}
	}
	return 0, false
}

// drainNeed is how long a warm pod needs after SIGTERM: the invocation in
// flight (its timeout, then KILL_GRACE_MS to stop the runtime that timed
// out), the HTTP server's close, the runtime's stop (KILL_GRACE_MS) and
// the callbacks still pending.
func drainNeed(cfg *config.Config) time.Duration {
	return cfg.Timeout + 2*cfg.KillGrace + serverCloseBound + callbackDrainBound
}

// deliveryNeed bounds the delivery of one result: every attempt's timeout
// and the backoffs between them.
func deliveryNeed(cfg *config.Config) time.Duration {
	// Each wait between attempts is at most the cap (a Retry-After may ask
	// for the cap whatever CALLBACK_BACKOFF_MS says).
	n := time.Duration(cfg.CallbackAttempts)
	return n*cfg.CallbackTimeout + (n-1)*callbackBackoffCap
}

func checkDeployment(p *problems, where string, d *appsv1.Deployment) {
	tpl := d.Spec.Template
	if d.Spec.Selector == nil {
		p.add(where, checkNames, "no selector")
	} else if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(labels.Set(tpl.Labels)) {
		p.add(where, checkNames, "the selector does not match the pod template's labels")
	}
	if d.Spec.Replicas != nil && *d.Spec.Replicas < 1 {
		p.add(where, checkNames, "replicas %d: a warm function keeps at least one pod", *d.Spec.Replicas)
	}
	cfg, c := checkPod(p, where, tpl.Spec, tpl.Labels)
	if cfg == nil {
		return
	}
	if cfg.Lifecycle != config.Server {
		p.add(where, checkEnv, "the watchdog would run one-shot (set WARM=true or EXECUTION_MODE=WARM): a Deployment's pod must serve")
		return
	}
	// Idle timeout: a watchdog that exits when idle is restarted by kubelet.
	if cfg.WarmIdleTimeout != 0 {
		p.add(where, checkIdle, "WARM_IDLE_TIMEOUT_MS is %v: the watchdog would exit 0 when idle and kubelet would restart it (then back off); set it to 0", cfg.WarmIdleTimeout)
	}
	// Ports.
	hasPort := false
	for _, cp := range c.Ports {
		if int(cp.ContainerPort) == cfg.WarmPort {
			hasPort = true
		}
		if int(cp.ContainerPort) == cfg.RuntimePort && cfg.Protocol == config.ProtocolHTTP {
			p.add(where, checkPorts, "containerPort %d is the runtime's (RUNTIME_URL), which must stay private to the watchdog", cp.ContainerPort)
		}
	}
	if !hasPort {
		p.add(where, checkPorts, "no containerPort %d (WARM_PORT)", cfg.WarmPort)
	}
	// Probes.
	rp := c.ReadinessProbe
	switch {
	case rp == nil || rp.HTTPGet == nil:
		p.add(where, checkProbes, "no HTTP readiness probe: it must be GET %s on WARM_PORT", healthPath)
	default:
		port, ok := portOf(c, rp.HTTPGet.Port)
		if rp.HTTPGet.Path != healthPath || !ok || port != cfg.WarmPort {
			p.add(where, checkProbes, "readiness is GET %s on %s, not GET %s on WARM_PORT %d: only /health says whether the runtime is ready", rp.HTTPGet.Path, rp.HTTPGet.Port.String(), healthPath, cfg.WarmPort)
		}
	}
	lp := c.LivenessProbe
	switch {
	case lp == nil || lp.HTTPGet == nil:
		p.add(where, checkProbes, "no HTTP liveness probe: it must be GET %s on WARM_PORT (a TCP probe passes on a hung process, whose socket still accepts)", metricsPath)
	default:
		port, ok := portOf(c, lp.HTTPGet.Port)
		if lp.HTTPGet.Path != metricsPath || !ok || port != cfg.WarmPort {
			p.add(where, checkProbes, "liveness is GET %s on %s, not GET %s on WARM_PORT %d: /health and /invoke fail while the runtime restarts, and kubelet would kill a pod that is recovering", lp.HTTPGet.Path, lp.HTTPGet.Port.String(), metricsPath, cfg.WarmPort)
		}
		if lp.FailureThreshold > 0 && lp.PeriodSeconds > 0 && lp.FailureThreshold*lp.PeriodSeconds < 20 {
			p.add(where, checkProbes, "liveness gives up after %d s: a watchdog briefly at its connection cap must not be killed", lp.FailureThreshold*lp.PeriodSeconds)
		}
	}
	if c.StartupProbe != nil {
		p.add(where, checkProbes, "a startup probe: not needed, the liveness path answers as soon as the watchdog listens")
	}
	// Scrape annotations.
	checkScrapeAnnotations(p, where, tpl.Annotations, cfg.WarmPort)
	// Grace period.
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if s := c.Lifecycle.PreStop.Sleep; s != nil {
			preStop = time.Duration(s.Seconds) * time.Second
		} else {
			p.add(where, checkGrace, "preStop is not a sleep: the image may have no shell or sleep binary")
		}
	}
	grace := 30 * time.Second // Kubernetes' default
	if tpl.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*tpl.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	if need := preStop + drainNeed(cfg); grace <= need {
		p.add(where, checkGrace, "terminationGracePeriodSeconds %v does not exceed the drain: preStop %v + TIMEOUT_MS %v + 2 x KILL_GRACE_MS %v + server close %v + callbacks %v = %v",
			grace, preStop, cfg.Timeout, cfg.KillGrace, serverCloseBound, callbackDrainBound, need)
	}
}

func checkScrapeAnnotations(p *problems, where string, a map[string]string, port int) {
	if a["prometheus.io/scrape"] != "true" {
		p.add(where, checkScrape, "prometheus.io/scrape is %q, not \"true\"", a["prometheus.io/scrape"])
	}
	if a["prometheus.io/path"] != metricsPath {
		p.add(where, checkScrape, "prometheus.io/path is %q, not %s", a["prometheus.io/path"], metricsPath)
	}
	if a["prometheus.io/port"] != strconv.Itoa(port) {
		p.add(where, checkScrape, "prometheus.io/port is %q, not WARM_PORT %d", a["prometheus.io/port"], port)
	}
}

// matchingDeployment returns the Deployment whose pods the selector picks.
func matchingDeployment(sel map[string]string, deployments []*appsv1.Deployment) *appsv1.Deployment {
	if len(sel) == 0 {
		return nil
	}
	for _, d := range deployments {
		if labels.SelectorFromSet(sel).Matches(labels.Set(d.Spec.Template.Labels)) {
			return d
		}
	}
	return nil
}

func checkServiceObj(p *problems, where string, s *corev1.Service, deployments []*appsv1.Deployment) {
	if s.Spec.Type != "" && s.Spec.Type != corev1.ServiceTypeClusterIP {
		p.add(where, checkService, "type %s, not ClusterIP: the control plane calls functions inside the cluster", s.Spec.Type)
	}
	d := matchingDeployment(s.Spec.Selector, deployments)
	if d == nil {
		p.add(where, checkService, "the selector %v picks the pods of no Deployment of the same manifests", s.Spec.Selector)
		return
	}
	var q problems
	cfg, c := checkPod(&q, where, d.Spec.Template.Spec, d.Spec.Template.Labels)
	if cfg == nil {
		p.add(where, checkService, "its Deployment %s has no valid watchdog configuration", d.Name)
		return
	}
	if len(s.Spec.Ports) == 0 {
		p.add(where, checkService, "no ports")
	}
	for _, sp := range s.Spec.Ports {
		target := sp.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(sp.Port)
		}
		port, ok := portOf(c, target)
		if !ok || port != cfg.WarmPort {
			p.add(where, checkService, "port %d targets %s, not WARM_PORT %d of %s", sp.Port, target.String(), cfg.WarmPort, d.Name)
		}
	}
	if len(s.Annotations) > 0 {
		checkScrapeAnnotations(p, where, s.Annotations, cfg.WarmPort)
	}
}

// exportedMetrics are the metric names a real watchdog serves on /metrics:
// one started in server mode (a per-invocation STDIO function, so no
// runtime has to come up) and scraped over HTTP.
func exportedMetrics() map[string]bool {
	port, err := freeport.Pick()
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	env := []string{"WARM=true", "EXECUTION_MODE=STDIO", "WATCHDOG_CMD=cat", "LOG_LEVEL=error", "WARM_PORT=" + strconv.Itoa(port)}
	go func() { done <- watchdog.Run(ctx, env, io.Discard, io.Discard) }()
	defer func() { cancel(); <-done }()
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	var body []byte
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(url)
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case status := <-done:
			panic(fmt.Sprintf("the watchdog exited with status %d before serving /metrics", status))
		default:
		}
		if time.Now().After(deadline) {
			panic("the watchdog did not serve /metrics within 30 s: " + fmt.Sprint(err))
		}
		time.Sleep(10 * time.Millisecond)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			names[strings.Fields(f)[0]] = true
		}
	}
	return names
}

func checkHPAObj(p *problems, where string, h *autoscalingv2.HorizontalPodAutoscaler, deployments []*appsv1.Deployment) {
	ref := h.Spec.ScaleTargetRef
	var target *appsv1.Deployment
	for _, d := range deployments {
		if ref.APIVersion == "apps/v1" && ref.Kind == "Deployment" && ref.Name == d.Name {
			target = d
		}
	}
	if target == nil {
		p.add(where, checkHPA, "scaleTargetRef %s %s %s is no Deployment of the same manifests", ref.APIVersion, ref.Kind, ref.Name)
	}
	minR := int32(1)
	if h.Spec.MinReplicas != nil {
		minR = *h.Spec.MinReplicas
	}
	if minR < 1 || h.Spec.MaxReplicas < minR {
		p.add(where, checkHPA, "minReplicas %d, maxReplicas %d: want 1 <= min <= max", minR, h.Spec.MaxReplicas)
	}
	known := exportedMetrics()
	found := false
	for _, m := range h.Spec.Metrics {
		if m.Type != autoscalingv2.PodsMetricSourceType || m.Pods == nil {
			continue
		}
		name := m.Pods.Metric.Name
		if !known[name] {
			p.add(where, checkHPA, "metric %q is not one the watchdog serves on /metrics", name)
			continue
		}
		if name != "watchdog_invocations_in_flight" {
			continue
		}
		found = true
		t := m.Pods.Target
		// The gauge is 0 or 1 per pod: a target over 1 never scales out.
		if t.Type != autoscalingv2.AverageValueMetricType || t.AverageValue == nil ||
			t.AverageValue.Sign() <= 0 || t.AverageValue.Cmp(resource.MustParse("1")) > 0 {
			p.add(where, checkHPA, "the in-flight target must be an AverageValue above 0 and at most 1 (the gauge is 0 or 1 per pod)")
		}
	}
	if !found {
		p.add(where, checkHPA, "no Pods metric watchdog_invocations_in_flight")
	}
}

func checkJobObj(p *problems, where string, j *batchv1.Job) {
	tpl := j.Spec.Template
	if tpl.Spec.RestartPolicy != corev1.RestartPolicyNever {
		p.add(where, checkJob, "restartPolicy %q, not Never: a restarted container would run the invocation again", tpl.Spec.RestartPolicy)
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit != 0 {
		p.add(where, checkJob, "backoffLimit is not 0: a second pod would run the invocation again")
	}
	cfg, c := checkPod(p, where, tpl.Spec, tpl.Labels)
	if cfg == nil {
		return
	}
	if cfg.Lifecycle != config.OneShot {
		p.add(where, checkJob, "the watchdog would serve (WARM): a Job runs one invocation")
		return
	}
	if id := tpl.Labels["execution-id"]; id != "" && id != cfg.ExecutionID {
		p.add(where, checkJob, "execution-id label %q, EXECUTION_ID %q", id, cfg.ExecutionID)
	}
	if c.ReadinessProbe != nil || c.LivenessProbe != nil || c.StartupProbe != nil || len(c.Ports) > 0 {
		p.add(where, checkJob, "probes or ports: a one-shot watchdog serves nothing (they would reach the function's runtime)")
	}
	// The deadline covers the run: an HTTP runtime's readiness, the
	// invocation's timeout, the kill grace and the delivery of the result.
	var ready time.Duration
	if cfg.Protocol == config.ProtocolHTTP {
		ready = cfg.ReadyTimeout
	}
	run := ready + cfg.Timeout + cfg.KillGrace + deliveryNeed(cfg)
	if j.Spec.ActiveDeadlineSeconds == nil {
		p.add(where, checkJobDeadline, "no activeDeadlineSeconds")
	} else if d := time.Duration(*j.Spec.ActiveDeadlineSeconds) * time.Second; d <= run {
		p.add(where, checkJobDeadline, "activeDeadlineSeconds %v does not exceed the run: ready %v + TIMEOUT_MS %v + KILL_GRACE_MS %v + callback delivery %v = %v", d, ready, cfg.Timeout, cfg.KillGrace, deliveryNeed(cfg), run)
	}
	grace := 30 * time.Second
	if tpl.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*tpl.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	if need := cfg.KillGrace + deliveryNeed(cfg); grace <= need {
		p.add(where, checkGrace, "terminationGracePeriodSeconds %v does not exceed stopping the function and delivering its result: KILL_GRACE_MS %v + delivery %v", grace, cfg.KillGrace, deliveryNeed(cfg))
	}
}

func isTrue(b *bool) bool { return b != nil && *b }
