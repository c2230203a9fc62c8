package cli

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the configuration table of docs/configuration.md from the code")

const (
	tableStart = "<!-- config-table:start -->\n"
	tableEnd   = "<!-- config-table:end -->"
)

// TestConfigurationDocTable keeps the configuration table of
// docs/configuration.md equal to the variables the code reads. Run with
// -update to regenerate it.
func TestConfigurationDocTable(t *testing.T) {
	const path = "../../../docs/configuration.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cannot read the configuration doc: %v", err)
	}
	doc := string(data)
	start := strings.Index(doc, tableStart)
	end := strings.Index(doc, tableEnd)
	if start < 0 || end < start {
		t.Fatalf("%s has no %q ... %q section; put the markers back around the configuration table", path, tableStart, tableEnd)
	}
	got := doc[start+len(tableStart) : end]
	want := MarkdownTable()
	if *update {
		doc = doc[:start+len(tableStart)] + want + doc[end:]
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatalf("cannot rewrite the configuration doc: %v", err)
		}
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("configuration table of docs/configuration.md is stale; run go test ./watchdog/internal/cli -update (-want +got):\n%s", diff)
	}
}
