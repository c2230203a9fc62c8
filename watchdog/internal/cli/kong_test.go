package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/kong-golden.json from Main (review the diff)")

// golden is one command line and how the watchdog must answer it. The
// answers were first recorded from the same command line written with
// kong v1.17.0 (which the watchdog used before its own parser): Main keeps
// kong's help layout, messages and exit codes. "{{help}}" stands for Help().
type golden struct {
	Args   string `json:"args"`
	Valid  bool   `json:"valid_env"`
	Status int    `json:"status"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}

// TestMainAnswersLikeKong runs Main on every recorded command line, with an
// incomplete environment (the watchdog stops with a configuration error when
// it gets as far as running) and a valid one (a server mode watchdog, which
// stops at once: its context is cancelled), and compares status and output.
func TestMainAnswersLikeKong(t *testing.T) {
	data, err := os.ReadFile("testdata/kong-golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []golden
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("testdata/kong-golden.json: %v", err)
	}
	if len(cases) < 100 {
		t.Fatalf("testdata/kong-golden.json has %d cases; the recording has 120", len(cases))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	help := Help()
	for i, c := range cases {
		var args []string
		if c.Args != "" {
			args = strings.Fields(c.Args)
		}
		var env []string
		if c.Valid {
			env = validEnv(t) // a port of its own: a stopped server may still hold its port
		}
		var stdout, stderr bytes.Buffer
		status := Main(ctx, "v1.2.3", args, env, &stdout, &stderr)
		got := golden{Args: c.Args, Valid: c.Valid, Status: status, Stdout: stdout.String(), Stderr: stderr.String()}
		if got.Stdout == help {
			got.Stdout = "{{help}}"
		}
		if *updateGolden {
			cases[i] = got
			continue
		}
		if got != c {
			t.Errorf("%q valid=%v:\nwant %d\n%s%s\ngot  %d\n%s%s", c.Args, c.Valid, c.Status, c.Stdout, c.Stderr, got.Status, got.Stdout, got.Stderr)
		}
	}
	if *updateGolden {
		out, err := json.MarshalIndent(cases, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("testdata/kong-golden.json", append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func validEnv(t *testing.T) []string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	return []string{"WARM=true", "EXECUTION_MODE=STDIO", "WATCHDOG_CMD=cat", "LOG_LEVEL=error", "WARM_PORT=" + strconv.Itoa(port)}
}
