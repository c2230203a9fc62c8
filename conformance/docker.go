package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// HostGateway is the name a container uses to reach the machine that runs
// the suite (mapped with --add-host host.docker.internal:host-gateway).
const HostGateway = "host.docker.internal"

// ErrNoDocker is returned when no Docker engine answers.
var ErrNoDocker = errors.New("no Docker engine answers")

// ErrImageMissing is returned when an image is not in the local engine.
var ErrImageMissing = errors.New("image not found in the local Docker engine")

func init() {
	// Ryuk, testcontainers' reaper, is an image that would have to be
	// pulled; the suite removes every container it starts itself.
	if _, set := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !set {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}

// DockerAvailable runs `docker info` and returns why it failed, or nil.
// Tests use it to tell "no Docker here" (skip) from a failing scenario.
func DockerAvailable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: docker info: %v: %s", ErrNoDocker, err, strings.TrimSpace(lastLines(string(out), 3)))
	}
	return nil
}

// Docker is the engine the suite runs containers on.
type Docker struct {
	cli *testcontainers.DockerClient
}

// NewDocker connects to the engine (DOCKER_HOST or the default socket).
func NewDocker(ctx context.Context) (*Docker, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	return &Docker{cli: cli}, nil
}

// Close releases the connection.
func (d *Docker) Close() { d.cli.Close() }

// ImageConfig is what an image says about how it runs.
type ImageConfig struct {
	Ref        string
	Env        map[string]string
	User       string
	Entrypoint []string
	Cmd        []string
}

// Image inspects an image in the local engine; it never pulls.
func (d *Docker) Image(ctx context.Context, ref string) (*ImageConfig, error) {
	res, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %s", ErrImageMissing, ref)
		}
		return nil, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	ic := &ImageConfig{Ref: ref, Env: map[string]string{}}
	if cfg := res.Config; cfg != nil {
		for _, kv := range cfg.Env {
			k, v, _ := strings.Cut(kv, "=")
			ic.Env[k] = v
		}
		ic.User = cfg.User
		ic.Entrypoint = cfg.Entrypoint
		ic.Cmd = cfg.Cmd
	}
	return ic, nil
}

// ContainerSpec says how to run a container.
type ContainerSpec struct {
	Image string
	// Env is added to (and overrides) the image's environment.
	Env map[string]string
	// Expose lists container ports ("8080/tcp") to map to free host ports.
	Expose []string
	// Files are copied into the container before it starts.
	Files []testcontainers.ContainerFile
	// Labels are added to the container (the suite adds its own too).
	Labels map[string]string
}

// Container is a started container. Remove it when done.
type Container struct {
	c       *testcontainers.DockerContainer
	d       *Docker
	Started time.Time
}

// Start creates and starts a container. It does not pull: the image must be
// in the local engine. The container can reach the host as HostGateway.
func (d *Docker) Start(ctx context.Context, spec ContainerSpec) (*Container, error) {
	labels := map[string]string{"dev.nanofaas.conformance": "true"}
	maps.Copy(labels, spec.Labels)
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithLogger(tclog.NewNoopLogger()),
		testcontainers.WithEnv(spec.Env),
		testcontainers.WithLabels(labels),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.ExtraHosts = append(hc.ExtraHosts, HostGateway+":host-gateway")
		}),
	}
	if len(spec.Expose) > 0 {
		opts = append(opts, testcontainers.WithExposedPorts(spec.Expose...))
	}
	if len(spec.Files) > 0 {
		opts = append(opts, testcontainers.WithFiles(spec.Files...))
	}
	started := time.Now()
	c, err := testcontainers.Run(ctx, spec.Image, opts...)
	if err != nil {
		if c != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
			_ = c.Terminate(rctx, testcontainers.StopTimeout(0))
			cancel()
		}
		return nil, fmt.Errorf("start a container of %s: %w", spec.Image, err)
	}
	return &Container{c: c, d: d, Started: started}, nil
}

// ID is the container's id.
func (c *Container) ID() string { return c.c.GetContainerID() }

// ShortID is the first 12 characters of the id.
func (c *Container) ShortID() string {
	id := c.ID()
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// State returns the container's state.
func (c *Container) State(ctx context.Context) (*container.State, error) {
	return c.c.State(ctx)
}

// WaitExit waits until the container is no longer running, up to bound,
// and returns its exit code.
func (c *Container) WaitExit(ctx context.Context, bound time.Duration) (int, error) {
	deadline := time.Now().Add(bound)
	for {
		st, err := c.c.State(ctx)
		if err != nil {
			return 0, fmt.Errorf("container %s: %w", c.ShortID(), err)
		}
		if !st.Running && st.Status != "created" {
			return st.ExitCode, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("container %s still running after %v", c.ShortID(), bound.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Logs returns the container's stdout and stderr, interleaved as written.
func (c *Container) Logs(ctx context.Context) ([]byte, error) {
	rc, err := c.c.Logs(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var b bytes.Buffer
	_, err = io.Copy(&b, rc)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return b.Bytes(), err
}

// Stop sends SIGTERM (docker stop) and waits up to timeout (whole seconds)
// before Docker kills the container. It returns how long the stop took.
func (c *Container) Stop(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	err := c.c.Stop(ctx, &timeout)
	return time.Since(start), err
}

// Endpoint returns http://host:port for a container port given in Expose.
// With a local engine (a unix socket) that is 127.0.0.1, where Docker
// publishes ports; with DOCKER_HOST=tcp://HOST:PORT it is HOST.
func (c *Container) Endpoint(ctx context.Context, port string) (string, error) {
	host := "127.0.0.1"
	if u, err := url.Parse(os.Getenv("DOCKER_HOST")); err == nil && u.Scheme == "tcp" && u.Hostname() != "" {
		host = u.Hostname()
	}
	p, err := c.c.MappedPort(ctx, port)
	if err != nil {
		return "", err
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(int(p.Num()))), nil
}

// Process is one process of a running container, as the host's ps sees it.
type Process struct {
	PID     string
	PPID    string
	State   string
	Command string
}

// Processes lists the processes of a running container (docker top); it
// works for images without any tool in them, FROM scratch included.
func (c *Container) Processes(ctx context.Context) ([]Process, error) {
	res, err := c.d.cli.ContainerTop(ctx, c.ID(), client.ContainerTopOptions{Arguments: []string{"-o", "pid,ppid,stat,args"}})
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, t := range res.Titles {
		col[strings.ToUpper(t)] = i
	}
	get := func(row []string, name string) string {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return ""
	}
	var out []Process
	for _, row := range res.Processes {
		cmd := get(row, "COMMAND")
		if cmd == "" {
			cmd = get(row, "ARGS")
		}
		out = append(out, Process{PID: get(row, "PID"), PPID: get(row, "PPID"), State: get(row, "STAT"), Command: cmd})
	}
	return out, nil
}

// Remove stops (at once) and removes the container. It uses its own
// timeout, so it works after ctx is cancelled.
func (c *Container) Remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.c.Terminate(ctx, testcontainers.StopTimeout(0))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RunTime is how long an exited container ran, from Docker's start to its
// exit (0 when Docker does not say).
func (c *Container) RunTime(ctx context.Context) time.Duration {
	st, err := c.c.State(ctx)
	if err != nil {
		return 0
	}
	start, err1 := time.Parse(time.RFC3339Nano, st.StartedAt)
	end, err2 := time.Parse(time.RFC3339Nano, st.FinishedAt)
	if err1 != nil || err2 != nil || end.Before(start) {
		return 0
	}
	return end.Sub(start)
}
