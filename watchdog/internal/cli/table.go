package cli

import (
	"fmt"
	"strings"

	"nanofaas.dev/watchdog/config"
)

// MarkdownTable renders the environment variables as the
// configuration table of docs/configuration.md.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Variable | Default | Meaning |\n|---|---|---|\n")
	for _, v := range config.Variables() {
		def := "-"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, strings.ReplaceAll(v.Help, "|", `\|`))
	}
	return b.String()
}
