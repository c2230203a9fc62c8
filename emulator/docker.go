package emulator

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DockerHost is how a container reaches the emulator on this machine
// (docker run --add-host host.docker.internal:host-gateway).
const DockerHost = "host.docker.internal"

// container is one `docker run` of a function image.
type container struct {
	docker string
	image  string
	name   string
	dir    string
	// limits are docker run flags (--cpus, --memory); entrypoint replaces
	// the image's (its first word) and command (the rest).
	limits     []string
	entrypoint []string
}

// imagePresent checks that image is on this machine.
func imagePresent(image string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", image).CombinedOutput(); err != nil {
		return fmt.Errorf("image %s is not on this machine (%s): build it (scripts/build-images.sh builds the examples) or docker pull it", image, strings.TrimSpace(string(out)))
	}
	return nil
}

// dockerGateway is the address of Docker's default bridge on this machine,
// where host.docker.internal (host-gateway) leads from a container. Some
// daemons (Docker 20.10 among them) leave the default bridge's gateway out
// of its IPAM configuration: then it is the bridge interface's address
// (com.docker.network.bridge.name, docker0 by default), which is what
// host-gateway resolves to.
func dockerGateway() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "network", "inspect", "bridge", "--format",
		`{{range .IPAM.Config}}{{.Gateway}} {{end}}|{{index .Options "com.docker.network.bridge.name"}}`).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("cannot find Docker's bridge gateway (docker network inspect bridge: %s)", strings.TrimSpace(string(out)))
	}
	gateways, iface, _ := strings.Cut(strings.TrimSpace(string(out)), "|")
	for _, f := range strings.Fields(gateways) {
		if ip := net.ParseIP(f); ip != nil && ip.To4() != nil {
			return f, nil
		}
	}
	if iface = strings.TrimSpace(iface); iface == "" || iface == "<no value>" {
		iface = "docker0"
	}
	ip, err := interfaceIPv4(iface)
	if err != nil {
		return "", fmt.Errorf("cannot find Docker's bridge gateway (docker network inspect bridge gave no gateway, and %w)", err)
	}
	return ip, nil
}

// interfaceIPv4 is the first IPv4 address of a network interface.
func interfaceIPv4(name string) (string, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return "", fmt.Errorf("cannot read the bridge interface %s: %w", name, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return "", fmt.Errorf("cannot read the addresses of the bridge interface %s: %w", name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String(), nil
		}
	}
	return "", fmt.Errorf("the bridge interface %s has no IPv4 address", name)
}

// configure applies a function's resources and, for a function registered
// with a command, its entrypoint.
func (c *container) configure(fn *Function) error {
	flags, err := fn.Resources.dockerFlags()
	if err != nil {
		return err
	}
	c.limits = flags
	if fn.Spec != nil {
		c.entrypoint = fn.Spec.Command
	}
	return nil
}

// CheckDocker reports whether the docker client is installed and its
// daemon answers, with a message saying what to do when not.
func CheckDocker() (string, error) {
	path, err := exec.LookPath("docker")
	if err != nil {
		return "", fmt.Errorf("docker is not installed (no docker on PATH): install Docker, or run the function on this machine without --image")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("the Docker daemon does not answer (docker version: %s): start it, or run the function on this machine without --image", strings.TrimSpace(string(out)))
	}
	return path, nil
}

// newContainer checks Docker and the image, and prepares a container named
// after the execution.
func newContainer(image, id string) (*container, error) {
	if image == "" {
		return nil, fmt.Errorf("the function has no image: give one with --image or the manifest's \"image\" field")
	}
	docker, err := CheckDocker()
	if err != nil {
		return nil, err
	}
	if err := imagePresent(image); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nanofaas-emulator-docker-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a directory for the container's files: %w", err)
	}
	return &container{docker: docker, image: image, name: "nanofaas-emulator-" + sanitizeName(id), dir: dir}, nil
}

func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, s)
}

// Run starts the container attached, its output going to log. env is given
// through an env file (not argv), so payloads stay out of ps. With warm, the
// watchdog's port 8080 is published on 127.0.0.1:hostPort.
func (c *container) Run(env []string, log *prefixWriter, warm bool, hostPort int) (*child, error) {
	var file bytes.Buffer
	for _, kv := range env {
		if strings.ContainsAny(kv, "\n\r") {
			k, _, _ := strings.Cut(kv, "=")
			return nil, fmt.Errorf("cannot pass %s to a container: its value spans several lines", k)
		}
		file.WriteString(kv + "\n")
	}
	envFile := filepath.Join(c.dir, "env")
	if err := os.WriteFile(envFile, file.Bytes(), 0o600); err != nil {
		return nil, fmt.Errorf("cannot write the container's env file: %w", err)
	}
	argv := []string{c.docker, "run", "--rm", "--name", c.name, "--cidfile", c.cidFile(),
		"--add-host", DockerHost + ":host-gateway", "--env-file", envFile}
	if warm {
		argv = append(argv, "-p", "127.0.0.1:"+strconv.Itoa(hostPort)+":8080")
	}
	argv = append(argv, c.limits...)
	if len(c.entrypoint) > 0 {
		argv = append(argv, "--entrypoint", c.entrypoint[0], c.image)
		argv = append(argv, c.entrypoint[1:]...)
	} else {
		argv = append(argv, c.image)
	}
	return startChild(c.docker, argv, "", os.Environ(), log)
}

func (c *container) cidFile() string { return filepath.Join(c.dir, "cid") }

// PeakMemoryKB is the container's peak memory use from its cgroup (while it
// runs), in KiB, or -1. cgroup v1 counts the page cache too.
func (c *container) PeakMemoryKB() int64 {
	data, err := os.ReadFile(c.cidFile())
	id := strings.TrimSpace(string(data))
	if err != nil || id == "" {
		return -1
	}
	for _, p := range []string{
		"/sys/fs/cgroup/system.slice/docker-" + id + ".scope/memory.peak",
		"/sys/fs/cgroup/docker/" + id + "/memory.peak",
		"/sys/fs/cgroup/memory/docker/" + id + "/memory.max_usage_in_bytes",
		"/sys/fs/cgroup/memory/system.slice/docker-" + id + ".scope/memory.max_usage_in_bytes",
	} {
		if b, err := os.ReadFile(p); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
				return n / 1024
			}
		}
	}
	return -1
}

// Stop asks Docker to stop the container: SIGTERM to the watchdog, then
// SIGKILL after grace.
func (c *container) Stop(grace time.Duration) {
	secs := max(int(grace.Round(time.Second)/time.Second), 1)
	ctx, cancel := context.WithTimeout(context.Background(), grace+15*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, c.docker, "stop", "-t", strconv.Itoa(secs), c.name).Run()
}

// Remove removes the container if it is still there, and its files.
func (c *container) Remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, c.docker, "rm", "-f", c.name).Run()
	_ = os.RemoveAll(c.dir)
}
