package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	Warm    bool              `json:"warm"`
	Command string            `json:"command"`
	CmdDir  string            `json:"dir"`
	Image   string            `json:"image"`
	Env     map[string]string `json:"env"`
	Example struct {
		Payload json.RawMessage `json:"payload"`
		Output  json.RawMessage `json:"output"`
	} `json:"example"`
}

// ImageMode is the mode the example's image is judged in: WARM for a
// function the manifest keeps warm ("warm": true), else the manifest's mode.
func (e Example) ImageMode() string {
	if e.Warm {
		return "WARM"
	}
	return e.Mode
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

// fixture is an image of fixtures/nonconforming and what the suite must
// say about it.
type fixture struct {
	// failed are the requirements it must fail (every other checked
	// requirement passes or, when the defect keeps it from being reached,
	// is skipped); none for the conforming cases.
	failed []string
	// expect, when set, is the expected output (default {"input":"HELLO"}).
	expect string
}

// nonconforming are the fixture images of fixtures/nonconforming. Those
// without failures are conforming cases that model what third-party
// runtimes really do, which the suite once failed.
var nonconforming = map[string]fixture{
	"http-never-healthy":   {failed: []string{"RT-HTTP-001"}},
	"http-ignores-sigterm": {failed: []string{"RT-SIG-001"}},
	"http-fixed-port":      {failed: []string{"RT-HTTP-003"}},
	"stdio-stdout-log":     {failed: []string{"RT-FN-001", "RT-IMG-003", "RT-STDIO-001"}},
	"wrapped-entrypoint":   {failed: []string{"RT-PID1-001"}},
	"http-self-callback":   {failed: []string{"RT-CB-001"}},
	"http-inband-error":    {failed: []string{"RT-ERR-001"}},
	"warm-fixed-port":      {failed: []string{"RT-HTTP-003"}},
	"stdio-floats":         {expect: `{"input":"HELLO","score":5,"n":100}`},
	"warm-stdio":           {},
	"http-ok":              {},
}

var (
	runtimeOnce sync.Once
	runtimeDir  string // holds the fixture binaries; removed when the tests end
	runtimeBin  string
	standinBin  string
	treeBin     string // this tree's watchdog
	runtimeErr  error
	buildMu     sync.Mutex
	built       = map[string]error{}
)

// removeFixtureRuntime removes the fixture binaries nonconformingImage
// built, once every test has run (TestMain).
func removeFixtureRuntime() {
	if runtimeDir != "" {
		_ = os.RemoveAll(runtimeDir)
	}
}

// buildBinaries builds, once per test process, the fixture runtime
// (fixtures/nonconforming/runtime), the stand-in watchdog
// (fixtures/nonconforming/standin-watchdog) and this tree's watchdog
// (watchdog/cmd/watchdog), static.
func buildBinaries(t *testing.T) {
	t.Helper()
	root := repoRoot(t)
	runtimeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "conformance-nonconforming-")
		if err != nil {
			runtimeErr = err
			return
		}
		runtimeDir = dir
		runtimeBin = filepath.Join(dir, "runtime")
		standinBin = filepath.Join(dir, "standin")
		treeBin = filepath.Join(dir, "watchdog")
		for bin, src := range map[string]string{runtimeBin: "fixtures/nonconforming/runtime",
			standinBin: "fixtures/nonconforming/standin-watchdog", treeBin: "watchdog/cmd/watchdog"} {
			cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
			cmd.Dir = filepath.Join(root, filepath.FromSlash(src))
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				runtimeErr = fmt.Errorf("go build %s: %v\n%s", src, err, out)
				return
			}
		}
	})
	if runtimeErr != nil {
		t.Fatal(runtimeErr)
	}
}

// nonconformingImage builds fixtures/nonconforming/<variant> (once per test
// process; Docker's cache makes a rebuild cheap) and returns its tag. The
// fixture runtime is a static Go binary built from fixtures/nonconforming/runtime.
func nonconformingImage(t *testing.T, d *conformance.Docker, variant string) string {
	t.Helper()
	requireImage(t, d, "nanofaas/watchdog:latest")
	buildBinaries(t)
	tag := "nanofaas/nonconforming-" + variant + ":latest"
	buildMu.Lock()
	defer buildMu.Unlock()
	err, done := built[variant]
	if !done {
		err = buildFixture(repoRoot(t), variant, tag, "")
		built[variant] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// standinImage builds fixtures/nonconforming/<variant> around the stand-in
// watchdog instead of nanofaas/watchdog, under a tag of its own, and
// removes the image by id when the test ends.
func standinImage(t *testing.T, variant string) string {
	t.Helper()
	buildBinaries(t)
	return fixtureImageWith(t, variant, "standin", standinBin)
}

// treeImage builds fixtures/nonconforming/<variant> around the watchdog of
// this tree (not the one in nanofaas/watchdog:latest, which may be older),
// and removes the image by id when the test ends.
func treeImage(t *testing.T, variant string) string {
	t.Helper()
	buildBinaries(t)
	return fixtureImageWith(t, variant, "tree", treeBin)
}

func fixtureImageWith(t *testing.T, variant, kind, watchdogBin string) string {
	t.Helper()
	tag := "nanofaas/" + kind + "-" + variant + ":" + randomID("t")
	if err := buildFixture(repoRoot(t), variant, tag, watchdogBin); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", tag).Output()
	if err != nil {
		t.Fatalf("docker image inspect %s: %v", tag, err)
	}
	id := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("docker", "image", "rm", "--force", id).CombinedOutput(); err != nil {
			t.Errorf("cannot remove image %s (%s): %v\n%s", id, tag, err, out)
		}
	})
	return tag
}

// watchdogCopy is the line of a fixture Dockerfile that copies our watchdog.
var watchdogCopy = regexp.MustCompile(`(?m)^COPY --from=watchdog /watchdog (\S+)$`)

// buildFixture builds fixtures/nonconforming/<variant> as tag; with
// watchdogBin, that binary replaces nanofaas/watchdog's.
func buildFixture(root, variant, tag, watchdogBin string) error {
	ctxDir, err := os.MkdirTemp("", "conformance-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ctxDir)
	df, err := os.ReadFile(filepath.Join(root, "fixtures", "nonconforming", variant, "Dockerfile"))
	if err != nil {
		return err
	}
	if watchdogBin != "" {
		if !watchdogCopy.Match(df) {
			return fmt.Errorf("fixtures/nonconforming/%s/Dockerfile does not copy the watchdog with COPY --from=watchdog /watchdog PATH", variant)
		}
		df = watchdogCopy.ReplaceAll(df, []byte("COPY standin $1"))
		df = regexp.MustCompile(`(?m)^FROM nanofaas/watchdog:latest AS watchdog\n`).ReplaceAll(df, nil)
		if err := copyFile(watchdogBin, filepath.Join(ctxDir, "standin")); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), df, 0o644); err != nil {
		return err
	}
	if err := copyFile(runtimeBin, filepath.Join(ctxDir, "runtime")); err != nil {
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

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// summary prints a report compactly for a test log.
func summary(rep *conformance.Report) string {
	var b strings.Builder
	rep.WriteText(&b)
	return b.String()
}
