package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// RunDemo is the embedded demo function, a STDIO function: it reads one JSON
// object from stdin and writes it back with "input" upper-cased (ASCII
// letters only, as the examples do). Anything else is a function error: a
// message on stderr and exit status 1.
func RunDemo(stdin io.Reader, stdout, stderr io.Writer) int {
	data, err := io.ReadAll(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "demo: cannot read stdin: %v\n", err)
		return 1
	}
	var payload map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&payload); err != nil || payload == nil {
		fmt.Fprintf(stderr, "demo: the payload must be a JSON object with a string \"input\", got %s\n", excerpt(bytes.TrimSpace(data)))
		return 1
	}
	input, ok := payload["input"].(string)
	if !ok {
		fmt.Fprintf(stderr, "demo: field \"input\" must be a string\n")
		return 1
	}
	payload["input"] = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, input)
	fmt.Fprintf(stderr, "demo: upper-casing %d characters\n", len([]rune(input)))
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(payload); err != nil {
		fmt.Fprintf(stderr, "demo: cannot write the output: %v\n", err)
		return 1
	}
	return 0
}
