package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"nanofaas.dev/devkit/freeport"
)

// The --image tests need Docker. Without a daemon they are skipped, loudly;
// NANOFAAS_REQUIRE_DOCKER=1 (CI) makes that a failure instead. Images that
// scripts/build-images.sh builds are used when present, likewise.

// requireDocker skips (or fails) the test when no Docker daemon answers.
func requireDocker(t *testing.T) {
	t.Helper()
	out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("SKIP %s: `docker info` failed (%v: %s); the --image tests need a Docker daemon", t.Name(), err, bytes.TrimSpace(out))
		if os.Getenv("NANOFAAS_REQUIRE_DOCKER") == "1" {
			t.Fatal(msg)
		}
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
}

// requireImage skips (or fails) the test when image is not on this machine.
func requireImage(t *testing.T, image string) {
	t.Helper()
	if err := exec.Command("docker", "image", "inspect", image).Run(); err != nil {
		msg := fmt.Sprintf("SKIP %s: image %s is not on this machine; build it with scripts/build-images.sh", t.Name(), image)
		if os.Getenv("NANOFAAS_REQUIRE_DOCKER") == "1" {
			t.Fatal(msg)
		}
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
}

// buildEmulator builds a static emulator binary (emulator/cmd/emulator) into dir.
func buildEmulator(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "emulator")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/emulator")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot build the emulator: %v\n%s", err, out)
	}
	return bin
}

// demoImage builds a FROM scratch image whose entrypoint is the emulator's
// built-in watchdog and whose function is the demo function, and removes it
// when the test ends.
func demoImage(t *testing.T, bin string) string {
	t.Helper()
	ctxDir := t.TempDir()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "emulator"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM scratch\nCOPY emulator /emulator\n" +
		"ENV EXECUTION_MODE=STDIO WATCHDOG_CMD=\"/emulator demo-function\"\n" +
		"ENTRYPOINT [\"/emulator\", \"watchdog-exec\"]\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("nanofaas/emulator-test:%d", os.Getpid())
	if out, err := exec.Command("docker", "build", "-q", "-t", tag, ctxDir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}

// containersNamed lists containers (running or not) whose name contains s.
func containersNamed(t *testing.T, s string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-a", "--filter", "name="+s, "--format", "{{.Names}}").Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(out))
}

type result struct {
	Stdout, Stderr string
	Code           int
}

func runEmulator(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	t.Logf("emulator %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

var reportRE = regexp.MustCompile(`\nREPORT execution_id=(\S+) status=(\S+) duration_ms=(\d+) init_ms=(\d+) max_rss_kb=(\d+) max_rss_method=cgroup exit_code=(\S+)\n$`)

// TestDocker runs the emulator binary (built static, as images need it)
// with --image, serve --docker, and serve with an image registered through
// the API.
func TestDocker(t *testing.T) {
	bin := buildEmulator(t, t.TempDir())
	t.Run("NotInstalled", func(t *testing.T) { testDockerNotInstalled(t, bin) })
	t.Run("InvokeImage", func(t *testing.T) { testDockerInvokeImage(t, bin) })
	t.Run("ImageMissing", func(t *testing.T) { testDockerImageMissing(t, bin) })
	t.Run("Serve", func(t *testing.T) { testDockerServe(t, bin) })
	t.Run("ExampleImages", func(t *testing.T) { testDockerExampleImages(t, bin) })
	t.Run("RegisterImage", func(t *testing.T) { testDockerRegisterImage(t, bin) })
}

func testDockerInvokeImage(t *testing.T, bin string) {
	requireDocker(t)
	image := demoImage(t, bin)
	id := fmt.Sprintf("exec-docker-%d", os.Getpid())

	got := runEmulator(t, bin, nil, "invoke", "--image", image, "--execution-id", id, "--data", `{"input":"in a box"}`)
	if diff := cmp.Diff(result{Stdout: "{\"input\":\"IN A BOX\"}\n"}, result{Stdout: got.Stdout, Code: got.Code}); diff != "" {
		t.Errorf("invoke --image (-want +got):\n%s", diff)
	}
	m := reportRE.FindStringSubmatch(got.Stderr)
	if m == nil {
		t.Fatalf("no REPORT line at the end of stderr:\n%s", got.Stderr)
	}
	// The memory figure is the container's cgroup peak: measured, not "-".
	if diff := cmp.Diff([]string{id, "success", "0"}, []string{m[1], m[2], m[6]}); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if !strings.Contains(got.Stderr, "["+id+"] demo: upper-casing 8 characters") {
		t.Errorf("the function's log line is missing from stderr")
	}
	if left := containersNamed(t, id); len(left) > 0 {
		t.Errorf("containers left behind: %v", left)
	}

	// A function error in the container exits 1 and still removes it.
	got = runEmulator(t, bin, nil, "invoke", "--image", image, "--execution-id", id+"-f", "--data", `[]`)
	if diff := cmp.Diff(1, got.Code); diff != "" {
		t.Errorf("exit status (-want +got):\n%s", diff)
	}
	if !strings.Contains(got.Stderr, "FUNCTION_ERROR: function failed with exit code 1") {
		t.Errorf("no FUNCTION_ERROR on stderr")
	}
	if left := containersNamed(t, id); len(left) > 0 {
		t.Errorf("containers left behind: %v", left)
	}
}

func testDockerImageMissing(t *testing.T, bin string) {
	requireDocker(t)
	got := runEmulator(t, bin, nil, "invoke", "--image", "nanofaas/no-such-image:never")
	if diff := cmp.Diff(2, got.Code); diff != "" {
		t.Errorf("exit status (-want +got):\n%s", diff)
	}
	if !strings.Contains(got.Stderr, "image nanofaas/no-such-image:never is not on this machine") {
		t.Errorf("stderr does not say the image is missing:\n%s", got.Stderr)
	}
}

// testDockerNotInstalled needs no Docker: without docker on PATH, --image
// is a clear usage error.
func testDockerNotInstalled(t *testing.T, bin string) {
	got := runEmulator(t, bin, []string{"PATH=" + t.TempDir()}, "invoke", "--image", "whatever:latest")
	if diff := cmp.Diff(2, got.Code); diff != "" {
		t.Errorf("exit status (-want +got):\n%s", diff)
	}
	if !strings.Contains(got.Stderr, "docker is not installed (no docker on PATH)") {
		t.Errorf("stderr does not say docker is missing:\n%s", got.Stderr)
	}
}

func testDockerServe(t *testing.T, bin string) {
	requireDocker(t)
	image := demoImage(t, bin)
	dir := t.TempDir()
	for name, manifest := range map[string]string{
		"oneshot": `{"name":"boxed","mode":"STDIO","image":"` + image + `"}`,
		"warm":    `{"name":"boxed-warm","mode":"STDIO","warm":true,"image":"` + image + `"}`,
	} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "function.json"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	stop, stderr := startServe(t, bin, "--docker", "--listen", fmt.Sprintf("0.0.0.0:%d", port),
		"--function", filepath.Join(dir, "oneshot"), "--function", filepath.Join(dir, "warm"))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, base+"/health", 200, `"ok"`)
	waitFor(t, base+"/v1/functions/boxed-warm", 200, `"status":"ready"`)

	type answer struct {
		Status int
		Body   map[string]any
	}
	for _, fn := range []string{"boxed", "boxed-warm", "boxed-warm"} {
		status, body := post(t, base+"/v1/functions/"+fn+":invoke", `{"input":{"input":"served"}}`)
		got := answer{status, map[string]any{"status": body["status"], "output": body["output"], "error": body["error"]}}
		want := answer{200, map[string]any{"status": "success", "output": map[string]any{"input": "SERVED"}, "error": nil}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s:invoke (-want +got):\n%s", fn, diff)
		}
	}
	stop()
	if !regexp.MustCompile(`(?m)^EXECUTION function=boxed-warm .* status=success .* max_rss_kb=\d+ .* runtime=docker warm=true$`).MatchString(stderr.String()) {
		t.Errorf("no EXECUTION line for the warm container")
	}
	if left := containersNamed(t, "nanofaas-emulator-"); len(left) > 0 {
		t.Errorf("containers left behind: %v", left)
	}
}

func testDockerExampleImages(t *testing.T, bin string) {
	requireDocker(t)
	for _, name := range []string{"python-stdio", "bash-file"} {
		t.Run(name, func(t *testing.T) {
			requireImage(t, "nanofaas/example-"+name+":latest")
			got := runEmulator(t, bin, nil, "invoke", "--function", filepath.Join("..", "examples", name), "--docker", "--check")
			if diff := cmp.Diff(0, got.Code); diff != "" {
				t.Errorf("exit status (-want +got):\n%s", diff)
			}
			if !strings.Contains(got.Stderr, "check passed") {
				t.Errorf("the output does not match the manifest's example output")
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func waitFor(t *testing.T, url string, status int, substr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == status && strings.Contains(string(data), substr) {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, data)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: no %d with %q within 60s (last: %s)", url, status, substr, last)
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("POST %s: not JSON: %s", url, data)
	}
	return resp.StatusCode, out
}

// registeredImage is the example image the API test registers: a warm
// FastAPI runtime (HTTP), as upstream deploys a function.
const registeredImage = "nanofaas/example-python-fastapi-warm:latest"

// apiClient makes requests to a serve and validates every answer against
// the emulator's OpenAPI document.
type apiClient struct {
	t      *testing.T
	c      *contract
	base   string
	client *http.Client
}

// do sends one request (a JSON body when body is not "") and returns the
// status, the headers and the body of a valid answer.
func (a *apiClient) do(method, path, body string) (int, http.Header, []byte) {
	a.t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, reader)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, data, err := exchange(a.c, a.client, req)
	if resp == nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	if err != nil {
		a.t.Errorf("contract: %v", err)
	}
	return resp.StatusCode, resp.Header, data
}

// decode unmarshals an answer's body, failing the test when it does not fit v.
func (a *apiClient) decode(what string, data []byte, v any) {
	a.t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		a.t.Fatalf("%s: cannot decode %s: %v", what, data, err)
	}
}

// dockerContainer is what the test reads of `docker inspect`.
type dockerContainer struct {
	ID         string `json:"Id"`
	HostConfig struct {
		Memory       int64
		NanoCpus     int64
		PortBindings map[string][]struct{ HostIP, HostPort string }
	}
}

// containerPublishing finds the running container of image that publishes
// its port 8080 on hostPort (the warm watchdog's port the API shows): host
// ports are exclusive, so this is one container, whatever else runs.
func containerPublishing(t *testing.T, image string, hostPort int) dockerContainer {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-q", "--no-trunc", "--filter", "ancestor="+image).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		t.Fatalf("no running container of %s", image)
	}
	out, err = exec.Command("docker", append([]string{"inspect"}, ids...)...).Output()
	if err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	var all []dockerContainer
	if err := json.Unmarshal(out, &all); err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	for _, ctr := range all {
		for _, b := range ctr.HostConfig.PortBindings["8080/tcp"] {
			if b.HostPort == fmt.Sprint(hostPort) {
				return ctr
			}
		}
	}
	t.Fatalf("no container of %s publishes 8080 on host port %d", image, hostPort)
	return dockerContainer{}
}

// containerExists tells whether a container with this id exists, running or not.
func containerExists(t *testing.T, id string) bool {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-a", "-q", "--no-trunc", "--filter", "id="+id).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.TrimSpace(string(out)) != ""
}

// testDockerRegisterImage registers an example image through the API, as
// upstream's CLI does, then invokes it (sync, and enqueue with the
// execution looked up), lists it, and deletes it; the resources become the
// container's limits, and the container is gone after the delete. Every
// answer is validated against the emulator's OpenAPI document.
func testDockerRegisterImage(t *testing.T, bin string) {
	requireDocker(t)
	requireImage(t, registeredImage)
	port := freePort(t)
	// The default host (127.0.0.1): containers call back on the second
	// listener, on Docker's bridge.
	var containerID string
	// Cleanups run last in, first out: serve has stopped when this runs.
	t.Cleanup(func() {
		if containerID != "" && containerExists(t, containerID) {
			t.Errorf("container %s left behind", containerID)
			_ = exec.Command("docker", "rm", "-f", containerID).Run()
		}
	})
	startServe(t, bin, "--listen", fmt.Sprint(port))
	a := &apiClient{t: t, c: emulatorContract(t), base: fmt.Sprintf("http://127.0.0.1:%d", port), client: &http.Client{Timeout: 2 * time.Minute}}
	waitFor(t, a.base+"/health", 200, `"ok"`)

	name := fmt.Sprintf("fastapi-warm-%d", os.Getpid())
	// A loaded machine, half a CPU: a generous READY_TIMEOUT_MS, so that
	// only a runtime that never starts fails.
	spec := `{"name":"` + name + `","image":"` + registeredImage + `","runtimeMode":"HTTP","timeoutMs":30000,` +
		`"env":{"READY_TIMEOUT_MS":"60000"},"resources":{"cpu":"500m","memory":"256Mi"}}`
	status, _, data := a.do("POST", "/v1/functions", spec)
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/functions: status %d, want 201: %s", status, data)
	}
	var registered upstreamFunction
	a.decode("POST /v1/functions", data, &registered)
	wantFn := upstreamFunction{
		Name: name, Image: registeredImage, Env: map[string]string{"READY_TIMEOUT_MS": "60000"}, TimeoutMs: 30000, Concurrency: 1,
		RequestedExecutionMode: "DEPLOYMENT", EffectiveExecutionMode: "DEPLOYMENT", RuntimeMode: "HTTP",
	}
	if diff := cmp.Diff(wantFn, registered); diff != "" {
		t.Errorf("POST /v1/functions (-want +got):\n%s", diff)
	}

	// The warm container starts at once; GET shows when it is ready.
	var fn struct {
		Resources map[string]string `json:"resources"`
		Watchdog  struct {
			Port   int `json:"port"`
			Health struct {
				Status string `json:"status"`
			} `json:"health"`
		} `json:"watchdog"`
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		status, _, data = a.do("GET", "/v1/functions/"+name, "")
		if status != http.StatusOK {
			t.Fatalf("GET /v1/functions/%s: status %d, want 200: %s", name, status, data)
		}
		a.decode("GET /v1/functions/"+name, data, &fn)
		if fn.Watchdog.Health.Status == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/functions/%s: not ready within 90s: %s", name, data)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if diff := cmp.Diff(map[string]string{"cpu": "500m", "memory": "256Mi"}, fn.Resources); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}

	// resources are the container's limits.
	ctr := containerPublishing(t, registeredImage, fn.Watchdog.Port)
	containerID = ctr.ID
	type limits struct{ Memory, NanoCpus int64 }
	if diff := cmp.Diff(limits{Memory: 256 << 20, NanoCpus: 500_000_000}, limits{ctr.HostConfig.Memory, ctr.HostConfig.NanoCpus}); diff != "" {
		t.Errorf("container %s limits (-want +got):\n%s", ctr.ID, diff)
	}

	type execution struct {
		ExecutionID string         `json:"executionId"`
		Status      string         `json:"status"`
		Output      map[string]any `json:"output"`
		Error       any            `json:"error"`
	}
	status, header, data := a.do("POST", "/v1/functions/"+name+":invoke", `{"input":{"input":"hello","n":1}}`)
	var sync execution
	a.decode(name+":invoke", data, &sync)
	type syncAnswer struct {
		Status         int
		HeaderMatches  bool
		Execution      execution
		ExecutionIDSet bool
	}
	got := syncAnswer{status, header.Get("X-Execution-Id") == sync.ExecutionID, execution{Status: sync.Status, Output: sync.Output, Error: sync.Error}, sync.ExecutionID != ""}
	want := syncAnswer{200, true, execution{Status: "success", Output: map[string]any{"input": "HELLO", "n": float64(1)}}, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s:invoke (-want +got):\n%s\nbody: %s", name, diff, data)
	}

	status, _, data = a.do("POST", "/v1/functions/"+name+":enqueue", `{"input":{"input":"later","n":2}}`)
	var queued execution
	a.decode(name+":enqueue", data, &queued)
	if status != http.StatusAccepted || queued.Status != "queued" || queued.ExecutionID == "" {
		t.Fatalf("%s:enqueue: status %d, want 202 with status queued and an executionId: %s", name, status, data)
	}
	var done execution
	deadline = time.Now().Add(90 * time.Second)
	for {
		status, _, data = a.do("GET", "/v1/executions/"+queued.ExecutionID, "")
		if status != http.StatusOK {
			t.Fatalf("GET /v1/executions/%s: status %d, want 200: %s", queued.ExecutionID, status, data)
		}
		a.decode("GET /v1/executions/"+queued.ExecutionID, data, &done)
		if done.Status != "queued" && done.Status != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/executions/%s: not finished within 90s: %s", queued.ExecutionID, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantDone := execution{ExecutionID: queued.ExecutionID, Status: "success", Output: map[string]any{"input": "LATER", "n": float64(2)}}
	if diff := cmp.Diff(wantDone, done); diff != "" {
		t.Errorf("GET /v1/executions/%s (-want +got):\n%s", queued.ExecutionID, diff)
	}

	// The list holds it as upstream's CLI decodes a FunctionResponse.
	status, _, data = a.do("GET", "/v1/functions", "")
	var list []upstreamFunction
	a.decode("GET /v1/functions", data, &list)
	var listed *upstreamFunction
	for i := range list {
		if list[i].Name == name {
			listed = &list[i]
		}
	}
	if status != http.StatusOK || listed == nil {
		t.Fatalf("GET /v1/functions: status %d, want 200 with %s: %s", status, name, data)
	}
	if diff := cmp.Diff(wantFn, *listed); diff != "" {
		t.Errorf("GET /v1/functions, %s (-want +got):\n%s", name, diff)
	}

	// DELETE answers 204; the function is gone at once, its container soon.
	if status, _, data = a.do("DELETE", "/v1/functions/"+name, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE /v1/functions/%s: status %d, want 204: %s", name, status, data)
	}
	if status, _, data = a.do("GET", "/v1/functions/"+name, ""); status != http.StatusNotFound {
		t.Errorf("GET /v1/functions/%s after DELETE: status %d, want 404: %s", name, status, data)
	}
	deadline = time.Now().Add(60 * time.Second)
	for containerExists(t, ctr.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("container %s still exists 60s after DELETE /v1/functions/%s", ctr.ID, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startServe starts `emulator serve` with args. The function it returns (run
// at cleanup too, once) stops it with SIGINT, checks that it exits 0 within
// 60 s, and logs its stderr, which it returns as well (read it only after
// stopping).
func startServe(t *testing.T, bin string, args ...string) (stop func(), stderr *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	stderr = &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGINT)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve did not exit 0: %v", err)
				}
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				t.Errorf("serve did not stop within 60s")
				<-done
			}
			t.Logf("serve stderr:\n%s", stderr.String())
		})
	}
	t.Cleanup(stop)
	return stop, stderr
}
