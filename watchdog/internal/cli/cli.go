// Package cli is the watchdog's command line: three flags (--help,
// --version, --check-config), the environment variables documented in
// --help, and the exit status.
//
// The flags are parsed here rather than with a flag library. The watchdog
// used kong, whose help format and messages this keeps (a test compares
// the two): kong's reflection-driven model disabled the linker's dead code
// elimination of methods, which made up 2.2 MB of a 9.5 MB binary and a
// tenth of the watchdog's start-up time, for three flags.
package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"nanofaas.dev/watchdog/config"
	"nanofaas.dev/watchdog/internal/supervise"
)

// Main runs the watchdog command with args (without the program name) and
// returns the exit status.
func Main(ctx context.Context, version string, args, env []string, stdout, stderr io.Writer) int {
	f, err := parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "watchdog: %v (the watchdog is configured from the environment; see watchdog --help)\n", err)
		return supervise.ExitConfig
	}
	switch f.exit {
	case exitHelp:
		_, _ = io.WriteString(stdout, Help())
		return 0
	case exitVersion:
		fmt.Fprintln(stdout, version)
		return 0
	}
	if f.checkConfig {
		if _, err := config.New(env); err != nil {
			fmt.Fprintf(stderr, "watchdog: configuration error: %v\n", err)
			return supervise.ExitConfig
		}
		fmt.Fprintln(stdout, "configuration is valid")
		return 0
	}
	return supervise.Run(ctx, env, stdout, stderr)
}

// The flags that end the command at once; the first one given wins.
const (
	exitHelp    = "help"
	exitVersion = "version"
)

type flags struct {
	exit        string
	checkConfig bool
}

// candidates are the flags suggested for an unknown one, in this order.
var candidates = []string{"--help", "-h", "--version", "--check-config"}

// parse reads args: long flags with an optional =true|false value, -h
// (alone or repeated in one argument), and "--", after which nothing is a
// flag. The watchdog takes no arguments: any is an error. Errors come in
// argument order, before anything is acted on.
func parse(args []string) (flags, error) {
	var f flags
	onlyArgs := false
	for _, a := range args {
		switch {
		case onlyArgs || a == "-" || !strings.HasPrefix(a, "-"):
			return f, fmt.Errorf("unexpected argument %s", a)
		case a == "--":
			onlyArgs = true
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a, "=")
			on := true
			switch name {
			case "--help", "--version", "--check-config":
				if hasValue {
					b, err := parseBool(value)
					if err != nil {
						return f, fmt.Errorf("%s: %w", name, err)
					}
					on = b
				}
			default:
				return f, unknownFlag(name)
			}
			switch name {
			case "--help":
				f.exitFirst(exitHelp) // even --help=false: a request for help
			case "--version":
				f.exitFirst(exitVersion)
			case "--check-config":
				f.checkConfig = on
			}
		default:
			for _, c := range a[1:] {
				if c != 'h' {
					return f, unknownFlag("-" + string(c))
				}
				f.exitFirst(exitHelp)
			}
		}
	}
	return f, nil
}

func (f *flags) exitFirst(what string) {
	if f.exit == "" {
		f.exit = what
	}
}

func parseBool(s string) (bool, error) {
	switch v := strings.ToLower(s); v {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	default:
		return false, fmt.Errorf("bool value must be true, 1, yes, false, 0 or no but got %q", v)
	}
}

// unknownFlag names the flag, with the known ones it may be a typo of.
func unknownFlag(name string) error {
	var close []string
	for _, c := range candidates {
		if strings.HasPrefix(c, name) || editDistance(c, name) <= 2 {
			close = append(close, fmt.Sprintf("%q", c))
		}
	}
	switch len(close) {
	case 0:
		return fmt.Errorf("unknown flag %s", name)
	case 1:
		return fmt.Errorf("unknown flag %s, did you mean %s?", name, close[0])
	default:
		return fmt.Errorf("unknown flag %s, did you mean one of %s?", name, strings.Join(close, ", "))
	}
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// helpWidth is the width --help wraps its paragraphs to.
const helpWidth = 80

// flagsHelp is the end of --help.
const flagsHelp = `Flags:
  -h, --help            Show context-sensitive help.
      --version         Print the version and exit.
      --check-config    Validate the configuration from the environment and exit
                        (0 when valid, 2 when not).
`

// Help is the --help text: usage, Description, and the flags.
func Help() string {
	var b strings.Builder
	b.WriteString("Usage: watchdog [flags]\n\n")
	writeWrapped(&b, Description(), helpWidth)
	b.WriteString("\n")
	b.WriteString(flagsHelp)
	return b.String()
}

// writeWrapped writes text with its paragraphs (runs of lines not starting
// with a blank) filled to width, and its indented lines as they are.
// Paragraphs and indented blocks are separated by one empty line.
func writeWrapped(b *strings.Builder, text string, width int) {
	var para []string
	sep := false
	block := func() {
		if sep {
			b.WriteString("\n")
		}
		sep = true
	}
	flush := func() {
		if len(para) == 0 {
			return
		}
		block()
		line := 0
		for i, w := range para {
			if i > 0 && line+1+len(w) > width {
				b.WriteString("\n")
				line = 0
			} else if i > 0 {
				b.WriteString(" ")
				line++
			}
			b.WriteString(w)
			line += len(w)
		}
		b.WriteString("\n")
		para = para[:0]
	}
	inBlock := false
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		switch {
		case strings.TrimSpace(l) == "":
			flush()
			inBlock = false
		case l[0] == ' ' || l[0] == '\t':
			flush()
			if !inBlock {
				block()
				inBlock = true
			}
			b.WriteString("    " + strings.TrimSpace(l) + "\n")
		default:
			inBlock = false
			para = append(para, strings.Fields(l)...)
		}
	}
	flush()
}

// Description is what --help says before the flags: what the watchdog
// does, its exit statuses, and every environment variable with its default.
func Description() string {
	var b strings.Builder
	b.WriteString("Process supervisor for nanofaas function containers. Runs one invocation " +
		"(EXECUTION_MODE=HTTP|STDIO|FILE) and posts the result to CALLBACK_URL, or " +
		"serves /invoke on WARM_PORT (EXECUTION_MODE=WARM, or WARM=true).\n\n")
	b.WriteString("Exit status: 0 result delivered (or server stopped cleanly), 1 result undelivered (logged), 2 bad configuration.\n\n")
	b.WriteString("Environment variables [default]:\n\n")
	for _, v := range config.Variables() {
		def := v.Default
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(&b, "%s [%s]\n    %s\n\n", v.Name, def, v.Help)
	}
	return b.String()
}
