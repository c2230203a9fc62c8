package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"nanofaas.dev/conformance"
)

// repoRoot is the repository's root directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Example is what the suite reads from examples/<dir>/function.json.
type Example struct {
	Dir     string            `json:"-"` // the example's directory name
	Path    string            `json:"-"` // its absolute path
	Name    string            `json:"name"`
	Mode    string            `json:"mode"`
	Command string            `json:"command"`
	CmdDir  string            `json:"dir"`
	Image   string            `json:"image"`
	Env     map[string]string `json:"env"`
	Example struct {
		Payload json.RawMessage `json:"payload"`
		Output  json.RawMessage `json:"output"`
	} `json:"example"`
}

// badPayload is a payload every example refuses: "input" must be a string.
const badPayload = `{"input":42}`

// loadExamples reads every examples/*/function.json.
func loadExamples(t testing.TB) []Example {
	t.Helper()
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "examples", "*", "function.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no examples/*/function.json under %s", root)
	}
	var out []Example
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ex Example
		if err := json.Unmarshal(data, &ex); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ex.Path = filepath.Dir(f)
		ex.Dir = filepath.Base(ex.Path)
		if ex.Image == "" {
			ex.Image = "nanofaas/example-" + ex.Dir + ":latest"
		}
		if p := os.Getenv("CONFORMANCE_EXAMPLE_IMAGES"); p != "" {
			// Test images built under another name: PREFIX + <dir>.
			ex.Image = p + ex.Dir + ":latest"
		}
		if len(ex.Example.Payload) == 0 || len(ex.Example.Output) == 0 {
			t.Fatalf("%s: no example.payload/example.output", f)
		}
		out = append(out, ex)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out
}

// exampleByDir returns one example.
func exampleByDir(t testing.TB, dir string) Example {
	t.Helper()
	for _, ex := range loadExamples(t) {
		if ex.Dir == dir {
			return ex
		}
	}
	t.Fatalf("no example %q under examples/", dir)
	return Example{}
}

var (
	dockerOnce sync.Once
	dockerErr  error
	docker     *conformance.Docker
)

// requireDocker skips the test, loudly, when no Docker engine answers
// (docker info fails); in CI (CI=true) that is a failure instead, since CI
// brings Docker up before the tests.
func requireDocker(t *testing.T) *conformance.Docker {
	t.Helper()
	dockerOnce.Do(func() {
		ctx := context.Background()
		if dockerErr = conformance.DockerAvailable(ctx); dockerErr != nil {
			return
		}
		docker, dockerErr = conformance.NewDocker(ctx)
	})
	if dockerErr != nil {
		msg := fmt.Sprintf("CONTAINER SCENARIO SKIPPED: Docker is not available on this machine (%v). "+
			"Start it with scripts/docker-up.sh, build the images with scripts/build-images.sh, and run the tests again.", dockerErr)
		if os.Getenv("CI") == "true" || os.Getenv("NANOFAAS_REQUIRE_DOCKER") == "1" {
			t.Fatal(msg + " In CI (or with NANOFAAS_REQUIRE_DOCKER=1) Docker must be up: this is a failure.")
		}
		t.Skip(msg)
	}
	return docker
}

// requireImage fails the test when an image is missing from the engine.
func requireImage(t *testing.T, d *conformance.Docker, image string) *conformance.ImageConfig {
	t.Helper()
	cfg, err := d.Image(context.Background(), image)
	if errors.Is(err, conformance.ErrImageMissing) {
		t.Fatalf("image %s is missing: build the images with scripts/build-images.sh (scripts/test.sh does it) before running the container scenarios", image)
	}
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// nonconforming are the fixture images of fixtures/nonconforming, and the
// requirements each must fail (every other checked requirement passes or,
// when the defect keeps it from being reached, is skipped).
var nonconforming = map[string][]string{
	"http-never-healthy":   {"RT-HTTP-001"},
	"http-ignores-sigterm": {"RT-SIG-001"},
	"http-fixed-port":      {"RT-HTTP-003"},
	"stdio-stdout-log":     {"RT-FN-001", "RT-IMG-003", "RT-STDIO-001"},
	"wrapped-entrypoint":   {"RT-PID1-001"},
}

var (
	runtimeOnce sync.Once
	runtimeDir  string // holds runtimeBin; removed when the tests end
	runtimeBin  string
	runtimeErr  error
	buildMu     sync.Mutex
	built       = map[string]error{}
)

// removeFixtureRuntime removes the fixture runtime nonconformingImage built,
// once every test has run (TestMain).
func removeFixtureRuntime() {
	if runtimeDir != "" {
		_ = os.RemoveAll(runtimeDir)
	}
}

// nonconformingImage builds fixtures/nonconforming/<variant> (once per test
// process; Docker's cache makes a rebuild cheap) and returns its tag. The
// fixture runtime is a static Go binary built from fixtures/nonconforming/runtime.
func nonconformingImage(t *testing.T, d *conformance.Docker, variant string) string {
	t.Helper()
	requireImage(t, d, "nanofaas/watchdog:latest")
	root := repoRoot(t)
	runtimeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "conformance-nonconforming-")
		if err != nil {
			runtimeErr = err
			return
		}
		runtimeDir = dir
		runtimeBin = filepath.Join(dir, "runtime")
		cmd := exec.Command("go", "build", "-trimpath", "-o", runtimeBin, ".")
		cmd.Dir = filepath.Join(root, "fixtures", "nonconforming", "runtime")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			runtimeErr = fmt.Errorf("go build the fixture runtime: %v\n%s", err, out)
		}
	})
	if runtimeErr != nil {
		t.Fatal(runtimeErr)
	}
	tag := "nanofaas/nonconforming-" + variant + ":latest"
	buildMu.Lock()
	defer buildMu.Unlock()
	err, done := built[variant]
	if !done {
		err = buildFixture(root, variant, tag)
		built[variant] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func buildFixture(root, variant, tag string) error {
	ctxDir, err := os.MkdirTemp("", "conformance-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ctxDir)
	df, err := os.ReadFile(filepath.Join(root, "fixtures", "nonconforming", variant, "Dockerfile"))
	if err != nil {
		return err
	}
	bin, err := os.ReadFile(runtimeBin)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), df, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "runtime"), bin, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "build", "-q", "-t", tag, ctxDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker build %s: %v\n%s", tag, err, out)
	}
	return nil
}

// summary prints a report compactly for a test log.
func summary(rep *conformance.Report) string {
	var b strings.Builder
	rep.WriteText(&b)
	return b.String()
}
