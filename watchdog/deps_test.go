package watchdog_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The watchdog binary is built from this module alone, with nothing but the
// standard library and golang.org/x/sys: the image build downloads only
// that, and no test helper or tool dependency can creep into PID 1.
func TestBinaryDependsOnStdAndXSysOnly(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("SKIP NOT TESTED: no go command in PATH: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./cmd/watchdog")
	cmd.Env = append(cmd.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/watchdog: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "nanofaas.dev/watchdog" || strings.HasPrefix(pkg, "nanofaas.dev/watchdog/") || strings.HasPrefix(pkg, "golang.org/x/sys/") {
			continue
		}
		t.Errorf("the watchdog binary imports %s; it may import only the standard library, this module and golang.org/x/sys", pkg)
	}
}
