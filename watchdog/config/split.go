package config

import (
	"fmt"
	"strings"
)

// SplitCommand splits a command line the way a POSIX shell splits words:
// blanks separate arguments, single quotes keep everything literally, double
// quotes keep blanks and honour the escapes \" \\ \$ \` and a backslash-newline,
// and a backslash outside quotes keeps the next character literally. Nothing is
// expanded: no variables, globs or command substitution, since the command is
// run without a shell.
func SplitCommand(line string) ([]string, error) {
	var (
		args    []string
		current strings.Builder
		inWord  bool
	)
	runes := []rune(line)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				args = append(args, current.String())
				current.Reset()
				inWord = false
			}
		case r == '\\':
			inWord = true
			if i+1 >= len(runes) {
				return nil, fmt.Errorf("it ends with a lone backslash")
			}
			i++
			if runes[i] != '\n' {
				current.WriteRune(runes[i])
			}
		case r == '\'':
			inWord = true
			end := indexRune(runes, i+1, '\'')
			if end < 0 {
				return nil, fmt.Errorf("the single quote at position %d is not closed", i+1)
			}
			current.WriteString(string(runes[i+1 : end]))
			i = end
		case r == '"':
			inWord = true
			start := i
			closed := false
			for i++; i < len(runes); i++ {
				c := runes[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i+1 < len(runes) {
					switch next := runes[i+1]; next {
					case '"', '\\', '$', '`':
						current.WriteRune(next)
						i++
						continue
					case '\n':
						i++
						continue
					}
				}
				current.WriteRune(c)
			}
			if !closed {
				return nil, fmt.Errorf("the double quote at position %d is not closed", start+1)
			}
		default:
			inWord = true
			current.WriteRune(r)
		}
	}
	if inWord {
		args = append(args, current.String())
	}
	return args, nil
}

func indexRune(runes []rune, from int, want rune) int {
	for i := from; i < len(runes); i++ {
		if runes[i] == want {
			return i
		}
	}
	return -1
}
