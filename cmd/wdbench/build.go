package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// binaries are the programs the benchmark runs, built into a temp dir.
type binaries struct {
	dir      string
	watchdog string
	gohttp   string
	gocat    string
	// command is how they were built, for the report.
	command string
}

// repoRoot finds the workspace root (the directory with go.work and
// watchdog/cmd/watchdog) from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.work")) && fileExists(filepath.Join(dir, "watchdog", "cmd", "watchdog", "main.go")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run wdbench inside the nanofaas repository (no go.work with watchdog/cmd/watchdog above the working directory)")
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// build builds the watchdog and the fixtures into dir, the watchdog exactly
// as the Dockerfile does (CGO_ENABLED=0, -trimpath, -ldflags='-s -w').
//
// With dockerFlags false (--short) only -ldflags='-s -w' is kept, so that
// the build reuses what `go test` compiled: -trimpath changes the cache key
// of every package, and CGO_ENABLED=0 that of net and everything above it;
// compiling them again takes from 15 s to a minute on two cores, more than
// the whole short run. The binaries then differ from the image's (file
// paths, and the cgo DNS resolver where a C compiler is installed), which
// the rough figures of --short do not care about.
func build(root, dir string, dockerFlags bool) (binaries, error) {
	b := binaries{
		dir:      dir,
		watchdog: filepath.Join(dir, "watchdog"),
		gohttp:   filepath.Join(dir, "gohttp"),
		gocat:    filepath.Join(dir, "gocat"),
	}
	args := []string{"build"}
	if dockerFlags {
		args = append(args, "-trimpath")
	}
	args = append(args, "-ldflags=-s -w", "-o", dir+string(os.PathSeparator), "./watchdog/cmd/watchdog", "./fixtures/gohttp", "./fixtures/gocat")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	if dockerFlags {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " '") {
			a = "'" + a + "'"
		}
		quoted[i] = a
	}
	b.command = "go " + strings.Join(quoted, " ")
	if dockerFlags {
		b.command = "CGO_ENABLED=0 " + b.command
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("%s: %v\n%s", b.command, err, out)
	}
	for _, p := range []string{b.watchdog, b.gohttp, b.gocat} {
		if !fileExists(p) {
			return b, fmt.Errorf("%s did not produce %s", b.command, p)
		}
	}
	return b, nil
}
