package emulator

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// FunctionSpec is the body of POST /v1/functions: upstream's FunctionSpec.
// Fields the emulator cannot honour are accepted and shown back (see the
// README's list of differences); unknown fields are ignored, as upstream
// ignores them.
type FunctionSpec struct {
	Name             string            `json:"name"`
	Image            string            `json:"image"`
	Command          []string          `json:"command,omitempty"`
	Env              map[string]string `json:"env,omitempty"`
	Resources        *ResourceSpec     `json:"resources,omitempty"`
	TimeoutMs        *int64            `json:"timeoutMs,omitempty"`
	Concurrency      *int              `json:"concurrency,omitempty"`
	MaxRetries       *int              `json:"maxRetries,omitempty"`
	EndpointURL      string            `json:"endpointUrl,omitempty"`
	ExecutionMode    string            `json:"executionMode,omitempty"`
	RuntimeMode      string            `json:"runtimeMode,omitempty"`
	RuntimeCommand   string            `json:"runtimeCommand,omitempty"`
	ImagePullSecrets []string          `json:"imagePullSecrets,omitempty"`
	QueueSize        *int              `json:"queueSize,omitempty"`
}

// ResourceSpec is a function's CPU and memory, in Kubernetes quantities
// ("250m", "0.5", "256Mi", "1G"); the emulator applies them as Docker limits.
type ResourceSpec struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

// functionNamePattern is upstream's function name.
var functionNamePattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9._-]{0,62}$`)

// nameRule says which names are accepted, for error messages.
const nameRule = "a letter, then up to 62 letters, digits, '.', '_' or '-'"

// Execution modes of upstream's FunctionSpec and FunctionResponse.
const (
	ModeLocal      = "LOCAL"
	ModePool       = "POOL"
	ModeDeployment = "DEPLOYMENT"
)

// apiReservedEnv are the variables the emulator sets for a registered
// function, and the FunctionSpec field to use instead.
var apiReservedEnv = map[string]string{
	"EXECUTION_MODE":     "use runtimeMode",
	"WATCHDOG_CMD":       "use runtimeCommand",
	"TIMEOUT_MS":         "use timeoutMs",
	"WARM":               "a registered function always runs its watchdog warm, as upstream deploys it",
	"WARM_PORT":          "the watchdog listens on 8080, as upstream deploys it",
	"CALLBACK_URL":       "the emulator points it at itself",
	"EXECUTION_ID":       "the emulator generates one per invocation",
	"INVOCATION_PAYLOAD": "the payload is the invocation's input",
	"WARM_CONCURRENCY":   "use concurrency",
	"WARM_QUEUE_SIZE":    "use queueSize",
}

// function validates a registration and builds the function it describes:
// the image, deployed warm as upstream deploys it.
func (sp FunctionSpec) function() (*Function, error) {
	switch {
	case sp.Name == "":
		return nil, fmt.Errorf("name is missing: %s", nameRule)
	case !functionNamePattern.MatchString(sp.Name):
		return nil, fmt.Errorf("name %q is not accepted: %s", sp.Name, nameRule)
	case strings.TrimSpace(sp.Image) == "":
		return nil, fmt.Errorf("image is missing: a registered function runs in its container image (local function directories are served with 'emulator serve -f DIR')")
	}
	mode, err := enumValue("executionMode", sp.ExecutionMode, ModeDeployment, ModeLocal, ModePool, ModeDeployment)
	if err != nil {
		return nil, err
	}
	if mode != ModeDeployment {
		return nil, fmt.Errorf("executionMode %s is not emulated: the emulator runs a registered function in its image (DEPLOYMENT); omit executionMode", mode)
	}
	rt, err := enumValue("runtimeMode", sp.RuntimeMode, "HTTP", "HTTP", "STDIO", "FILE")
	if err != nil {
		return nil, err
	}
	timeout := DefaultTimeout
	if sp.TimeoutMs != nil {
		if *sp.TimeoutMs < 1 || *sp.TimeoutMs > MaxTimeoutMs {
			return nil, fmt.Errorf("timeoutMs %d: from 1 to %d", *sp.TimeoutMs, MaxTimeoutMs)
		}
		timeout = time.Duration(*sp.TimeoutMs) * time.Millisecond
	}
	for field, v := range map[string]*int{"concurrency": sp.Concurrency, "queueSize": sp.QueueSize} {
		if v != nil && *v < 1 {
			return nil, fmt.Errorf("%s %d: at least 1", field, *v)
		}
	}
	if sp.MaxRetries != nil && *sp.MaxRetries < 0 {
		return nil, fmt.Errorf("maxRetries %d: at least 0", *sp.MaxRetries)
	}
	if sp.Resources != nil {
		if _, err := sp.Resources.dockerFlags(); err != nil {
			return nil, err
		}
	}
	env := map[string]string{}
	for k, v := range sp.Env {
		if !envNamePattern.MatchString(k) {
			return nil, fmt.Errorf("env %q is not a variable name: letters, digits and '_', not starting with a digit", k)
		}
		if why, ok := apiReservedEnv[k]; ok {
			return nil, fmt.Errorf("env %s is set by the emulator: %s", k, why)
		}
		env[k] = v
	}
	deploy := map[string]string{
		"WARM":           "true",
		"WARM_PORT":      "8080",
		"EXECUTION_MODE": rt,
		"TIMEOUT_MS":     strconv.FormatInt(timeout.Milliseconds(), 10),
		"FUNCTION_NAME":  sp.Name,
	}
	if sp.RuntimeCommand != "" {
		deploy["WATCHDOG_CMD"] = sp.RuntimeCommand
	}
	if sp.Concurrency != nil {
		deploy["WARM_CONCURRENCY"] = strconv.Itoa(*sp.Concurrency)
	}
	if sp.QueueSize != nil {
		deploy["WARM_QUEUE_SIZE"] = strconv.Itoa(*sp.QueueSize)
	}
	if err := checkConfig(merge(env, deploy), true); err != nil {
		return nil, err
	}
	spec := sp
	spec.ExecutionMode, spec.RuntimeMode, spec.Env = mode, rt, env
	return &Function{
		Name: sp.Name, Mode: rt, Image: sp.Image, Env: env, Timeout: timeout, Warm: true,
		Resources: sp.Resources, Spec: &spec, DeployEnv: deploy,
	}, nil
}

// enumValue accepts one of values in any case; "" is def.
func enumValue(field, v, def string, values ...string) (string, error) {
	if v == "" {
		return def, nil
	}
	up := strings.ToUpper(strings.TrimSpace(v))
	for _, x := range values {
		if up == x {
			return x, nil
		}
	}
	return "", fmt.Errorf("%s %q is not accepted: one of %s", field, v, strings.Join(values, ", "))
}

// dockerFlags turns the resources into docker run limits (--cpus, --memory).
func (r *ResourceSpec) dockerFlags() ([]string, error) {
	var flags []string
	if r == nil {
		return nil, nil
	}
	if r.CPU != "" {
		cpus, err := parseCPU(r.CPU)
		if err != nil {
			return nil, err
		}
		flags = append(flags, "--cpus", strconv.FormatFloat(cpus, 'f', -1, 64))
	}
	if r.Memory != "" {
		b, err := parseMemory(r.Memory)
		if err != nil {
			return nil, err
		}
		flags = append(flags, "--memory", strconv.FormatInt(b, 10))
	}
	return flags, nil
}

// parseCPU reads a Kubernetes CPU quantity: "250m" or "0.5" or "2".
func parseCPU(s string) (float64, error) {
	v := strings.TrimSpace(s)
	scale := 1.0
	if m, ok := strings.CutSuffix(v, "m"); ok {
		v, scale = m, 0.001
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, fmt.Errorf("resources.cpu %q is not a CPU quantity: e.g. \"250m\" (a quarter of a CPU), \"0.5\" or \"2\"", s)
	}
	if cpus := n * scale; cpus >= 0.01 {
		return cpus, nil
	}
	return 0, fmt.Errorf("resources.cpu %q is below Docker's smallest limit, 10m", s)
}

// memoryUnits are Kubernetes' memory suffixes.
var memoryUnits = []struct {
	suffix string
	factor int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1000}, {"K", 1000}, {"M", 1000 * 1000}, {"G", 1000 * 1000 * 1000}, {"T", 1000 * 1000 * 1000 * 1000},
}

// parseMemory reads a Kubernetes memory quantity into bytes: "256Mi", "1G",
// "1048576".
func parseMemory(s string) (int64, error) {
	v := strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range memoryUnits {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, factor = n, u.factor
			break
		}
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, fmt.Errorf("resources.memory %q is not a memory quantity: e.g. \"256Mi\", \"1Gi\" or \"500M\"", s)
	}
	b := int64(n * float64(factor))
	if b < 6<<20 {
		return 0, fmt.Errorf("resources.memory %q is below Docker's smallest limit, 6Mi", s)
	}
	return b, nil
}

// functionResponse is a function as GET /v1/functions shows it: upstream's
// FunctionResponse, then the emulator's extra fields.
type functionResponse struct {
	Name                   string            `json:"name"`
	Image                  string            `json:"image"`
	Command                []string          `json:"command,omitempty"`
	Env                    map[string]string `json:"env"`
	Resources              *ResourceSpec     `json:"resources,omitempty"`
	TimeoutMs              int64             `json:"timeoutMs"`
	Concurrency            int               `json:"concurrency"`
	MaxRetries             int               `json:"maxRetries"`
	QueueSize              *int              `json:"queueSize,omitempty"`
	EndpointURL            string            `json:"endpointUrl,omitempty"`
	RequestedExecutionMode string            `json:"requestedExecutionMode"`
	EffectiveExecutionMode string            `json:"effectiveExecutionMode"`
	DeploymentBackend      string            `json:"deploymentBackend,omitempty"`
	RuntimeMode            string            `json:"runtimeMode"`
	RuntimeCommand         string            `json:"runtimeCommand,omitempty"`
	ImagePullSecrets       []string          `json:"imagePullSecrets,omitempty"`

	// Source is "api" (registered with POST /v1/functions), "manifest"
	// (serve -f) or "demo".
	Source string `json:"source"`
	// Mode is the emulator's mode: HTTP, STDIO, FILE or WARM.
	Mode string `json:"mode"`
	Warm bool   `json:"warm"`
	// Dir is where a local function's command runs.
	Dir      string `json:"dir,omitempty"`
	Manifest string `json:"manifest,omitempty"`
	// ManifestError says why the manifest, changed on disk, was not
	// reloaded (--watch): the previous definition still runs.
	ManifestError string `json:"manifestError,omitempty"`
	// Watchdog is the warm watchdog's state (warm functions only).
	Watchdog *InstanceStatus `json:"watchdog,omitempty"`
}

// functionResponse describes a registered function.
func (s *Server) functionResponse(e *entry) functionResponse {
	s.mu.Lock()
	fn, problem := e.fn, e.problem
	s.mu.Unlock()
	v := functionResponse{
		Name: fn.Name, Image: fn.Image, Env: fn.Env, Resources: fn.Resources, TimeoutMs: fn.Timeout.Milliseconds(),
		Concurrency: 1, RuntimeMode: fn.Protocol(), Mode: fn.Mode, Warm: fn.Warm, Dir: fn.Dir,
		Manifest: fn.Manifest, ManifestError: problem, Source: "manifest",
	}
	if v.Env == nil {
		v.Env = map[string]string{}
	}
	switch {
	case fn.Spec != nil:
		sp := fn.Spec
		v.Source = "api"
		v.Command, v.EndpointURL, v.ImagePullSecrets = sp.Command, sp.EndpointURL, sp.ImagePullSecrets
		v.RequestedExecutionMode, v.EffectiveExecutionMode, v.DeploymentBackend = sp.ExecutionMode, ModeDeployment, "docker"
		v.RuntimeCommand, v.QueueSize = sp.RuntimeCommand, sp.QueueSize
		if sp.Concurrency != nil {
			v.Concurrency = *sp.Concurrency
		}
		v.MaxRetries = 3
		if sp.MaxRetries != nil {
			v.MaxRetries = *sp.MaxRetries
		}
	case s.runner.Docker:
		v.RequestedExecutionMode, v.EffectiveExecutionMode, v.DeploymentBackend = ModeDeployment, ModeDeployment, "docker"
	default:
		v.RequestedExecutionMode, v.EffectiveExecutionMode = ModeLocal, ModeLocal
		v.RuntimeCommand = fn.Command
	}
	if fn.Spec == nil && !fn.Warm {
		v.Concurrency = s.opts.Concurrency
	}
	if e.source == "" && fn.Spec == nil {
		v.Source = "demo"
	}
	if e.inst != nil {
		st := e.inst.Status()
		v.Watchdog = &st
	}
	return v
}
