package config

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// SplitCommand splits a command line the way a POSIX shell splits words:
// blanks separate arguments, single quotes keep everything literally, double
// quotes keep blanks and honour the escapes \" \\ \$ \` and a backslash-newline,
// and a backslash outside quotes keeps the next character literally. Nothing is
// expanded: no variables, globs or command substitution, since the command is
// run without a shell.
func SplitCommand(line string) ([]string, error) {
	// The line is read byte by byte: every special character is ASCII, so
	// UTF-8 text passes through intact, and so do bytes that are not UTF-8
	// (a Latin-1 file name stays that file's name).
	var (
		args    []string
		current strings.Builder
		inWord  bool
	)
	// position is the 1-based character position of byte offset i, for messages.
	position := func(i int) int { return utf8.RuneCountInString(line[:i]) + 1 }
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				args = append(args, current.String())
				current.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 >= len(line) {
				return nil, fmt.Errorf("it ends with a lone backslash")
			}
			i++
			if line[i] != '\n' {
				current.WriteByte(line[i])
			}
		case c == '\'':
			inWord = true
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("the single quote at position %d is not closed", position(i))
			}
			current.WriteString(line[i+1 : i+1+end])
			i += 1 + end
		case c == '"':
			inWord = true
			start := i
			closed := false
			for i++; i < len(line); i++ {
				d := line[i]
				if d == '"' {
					closed = true
					break
				}
				if d == '\\' && i+1 < len(line) {
					switch next := line[i+1]; next {
					case '"', '\\', '$', '`':
						current.WriteByte(next)
						i++
						continue
					case '\n':
						i++
						continue
					}
				}
				current.WriteByte(d)
			}
			if !closed {
				return nil, fmt.Errorf("the double quote at position %d is not closed", position(start))
			}
		default:
			inWord = true
			current.WriteByte(c)
		}
	}
	if inWord {
		args = append(args, current.String())
	}
	return args, nil
}
