package cli

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the README's configuration table from the code")

const (
	tableStart = "<!-- config-table:start -->\n"
	tableEnd   = "<!-- config-table:end -->"
)

// TestREADMEConfigTable keeps the README's configuration table equal to the
// variables the code reads. Run with -update to regenerate it.
func TestREADMEConfigTable(t *testing.T) {
	const path = "../../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, tableStart)
	end := strings.Index(readme, tableEnd)
	if start < 0 || end < start {
		t.Fatalf("README.md has no %q ... %q section", tableStart, tableEnd)
	}
	got := readme[start+len(tableStart) : end]
	want := MarkdownTable()
	if *update {
		readme = readme[:start+len(tableStart)] + want + readme[end:]
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("README configuration table is stale; run go test ./watchdog/cli -update (-want +got):\n%s", diff)
	}
}
