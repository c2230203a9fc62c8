// Package conformance checks that the nanofaas watchdog and the runtime
// images built on it behave as SPEC.md says. SPEC.md, embedded here, is the
// single source of the requirements: the CLI lists it, the runner checks its
// runtime-side (RT-*) requirements against an image, and the tests check
// that every requirement has a scenario.
package conformance

import (
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

//go:embed SPEC.md
var specText string

// Level is a requirement's RFC 2119 level.
type Level string

// The levels, strongest first.
const (
	Must   Level = "MUST"
	Should Level = "SHOULD"
	May    Level = "MAY"
)

// rank orders the levels: MUST is 0, the strongest.
func (l Level) rank() int {
	switch l {
	case Must:
		return 0
	case Should:
		return 1
	case May:
		return 2
	}
	return 3
}

// Includes reports whether a run at level l (the weakest level it checks)
// checks a requirement of level r: MUST checks only MUST, SHOULD checks
// MUST and SHOULD, MAY checks everything.
func (l Level) Includes(r Level) bool { return r.rank() <= l.rank() }

// ParseLevel accepts MUST, SHOULD or MAY in any case.
func ParseLevel(s string) (Level, error) {
	l := Level(strings.ToUpper(strings.TrimSpace(s)))
	if l.rank() > 2 {
		return "", fmt.Errorf("level %q: want MUST, SHOULD or MAY", s)
	}
	return l, nil
}

// Modes are the execution modes a requirement can apply to.
var Modes = []string{"HTTP", "STDIO", "FILE", "WARM"}

// Requirement is one numbered requirement of the spec.
type Requirement struct {
	ID    string `json:"id"`
	Level Level  `json:"level"`
	Title string `json:"title"`
	// Side is "WD" (the watchdog guarantees it) or "RT" (a runtime image must do it).
	Side string `json:"side"`
	// Group is the ID's topic prefix, e.g. "RT-HTTP".
	Group string `json:"group"`
	// Modes lists the modes it applies to (every mode when the spec says "all").
	Modes []string `json:"modes"`
	// Scenarios are the places that check it, as the spec writes them.
	Scenarios []string `json:"scenarios"`
	// Text is the statement.
	Text string `json:"text"`
}

// AppliesTo reports whether the requirement applies to mode.
func (r Requirement) AppliesTo(mode string) bool { return slices.Contains(r.Modes, mode) }

// Group is a section of the spec: the requirements of one topic.
type Group struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// Spec is the parsed SPEC.md.
type Spec struct {
	Version      string        `json:"version"`
	Groups       []Group       `json:"groups"`
	Requirements []Requirement `json:"requirements"`
}

// Requirement returns the requirement with that id.
func (s *Spec) Requirement(id string) (Requirement, bool) {
	for _, r := range s.Requirements {
		if r.ID == id {
			return r, true
		}
	}
	return Requirement{}, false
}

// GroupTitle returns the title of a group, or its id when unknown.
func (s *Spec) GroupTitle(id string) string {
	for _, g := range s.Groups {
		if g.ID == id {
			return g.Title
		}
	}
	return id
}

// LoadSpec returns the embedded SPEC.md, parsed. It panics when the embedded
// spec does not parse: a test keeps that from being built.
func LoadSpec() *Spec {
	s, err := ParseSpec(specText)
	if err != nil {
		panic("conformance: the embedded SPEC.md does not parse: " + err.Error())
	}
	return s
}

// SpecText returns SPEC.md as embedded.
func SpecText() string { return specText }

var (
	versionLine = regexp.MustCompile(`^Version: (\d+\.\d+\.\d+)$`)
	groupLine   = regexp.MustCompile(`^## ((?:WD|RT)-[A-Z0-9]+): (.+)$`)
	reqLine     = regexp.MustCompile(`^### ((WD|RT)-([A-Z0-9]+)-(\d{3})): (.+)$`)
	fieldLine   = regexp.MustCompile(`^- \*\*(Level|Modes|Scenarios):\*\* (.+)$`)
	idShape     = regexp.MustCompile(`^(WD|RT)-[A-Z0-9]+-\d{3}$`)
	keyword     = regexp.MustCompile(`\b(MUST|SHOULD|MAY)\b`)
)

// IsID reports whether s has the shape of a requirement id.
func IsID(s string) bool { return idShape.MatchString(s) }

// ParseSpec parses the text of SPEC.md. It checks the structure the suite
// relies on: a version, requirements inside groups of their own prefix,
// unique ids, a level, modes, at least one scenario and a statement that
// uses its level's key word.
func ParseSpec(text string) (*Spec, error) {
	s := &Spec{}
	var cur *Requirement
	var group *Group
	seen := map[string]bool{}
	var errs []string
	fail := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("SPEC.md:%d: %s", line, fmt.Sprintf(format, args...)))
	}
	finish := func(line int) {
		if cur == nil {
			return
		}
		cur.Text = strings.TrimSpace(cur.Text)
		switch {
		case cur.Level == "":
			fail(line, "%s has no **Level:** line", cur.ID)
		case len(cur.Modes) == 0:
			fail(line, "%s has no **Modes:** line", cur.ID)
		case len(cur.Scenarios) == 0:
			fail(line, "%s names no scenario", cur.ID)
		case cur.Text == "":
			fail(line, "%s has no statement", cur.ID)
		case !slices.Contains(keyword.FindAllString(cur.Text, -1), string(cur.Level)):
			fail(line, "%s is %s but its statement does not say %s", cur.ID, cur.Level, cur.Level)
		}
		s.Requirements = append(s.Requirements, *cur)
		cur = nil
	}
	lines := strings.Split(text, "\n")
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimRight(raw, " \t\r")
		if m := versionLine.FindStringSubmatch(line); m != nil && s.Version == "" {
			s.Version = m[1]
			continue
		}
		if strings.HasPrefix(line, "## ") {
			finish(n)
			group = nil
			if m := groupLine.FindStringSubmatch(line); m != nil {
				s.Groups = append(s.Groups, Group{ID: m[1], Title: m[2]})
				group = &s.Groups[len(s.Groups)-1]
			}
			continue
		}
		if strings.HasPrefix(line, "### ") {
			finish(n)
			m := reqLine.FindStringSubmatch(line)
			if m == nil {
				if group != nil {
					fail(n, "heading %q in group %s is not \"### ID: Title\"", line, group.ID)
				}
				continue
			}
			id := m[1]
			prefix := m[2] + "-" + m[3]
			switch {
			case group == nil:
				fail(n, "%s is outside a requirement group (## WD-XXX: Title)", id)
			case group.ID != prefix:
				fail(n, "%s is in group %s; its prefix says %s", id, group.ID, prefix)
			}
			if seen[id] {
				fail(n, "%s is defined twice", id)
			}
			seen[id] = true
			cur = &Requirement{ID: id, Title: strings.TrimSpace(m[5]), Side: m[2], Group: prefix}
			continue
		}
		if cur == nil {
			continue
		}
		if m := fieldLine.FindStringSubmatch(line); m != nil {
			value := strings.TrimSpace(m[2])
			switch m[1] {
			case "Level":
				l, err := ParseLevel(value)
				if err != nil {
					fail(n, "%s: %v", cur.ID, err)
				}
				cur.Level = l
			case "Modes":
				modes, err := parseModes(value)
				if err != nil {
					fail(n, "%s: %v", cur.ID, err)
				}
				cur.Modes = modes
			case "Scenarios":
				for _, sc := range strings.Split(value, ",") {
					sc = strings.TrimSpace(sc)
					if !strings.HasPrefix(sc, "`") || !strings.HasSuffix(sc, "`") || len(sc) < 3 {
						fail(n, "%s: scenario %q is not in backquotes", cur.ID, sc)
						continue
					}
					cur.Scenarios = append(cur.Scenarios, strings.Trim(sc, "`"))
				}
			}
			continue
		}
		if strings.HasPrefix(line, "- **") {
			fail(n, "%s: unknown field line %q", cur.ID, line)
			continue
		}
		cur.Text += raw + "\n"
	}
	finish(len(lines))
	if s.Version == "" {
		errs = append(errs, "SPEC.md: no \"Version: X.Y.Z\" line")
	}
	if len(s.Requirements) == 0 {
		errs = append(errs, "SPEC.md: no requirement")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return s, nil
}

func parseModes(v string) ([]string, error) {
	if strings.EqualFold(v, "all") {
		return slices.Clone(Modes), nil
	}
	var out []string
	for _, m := range strings.Split(v, ",") {
		m = strings.ToUpper(strings.TrimSpace(m))
		if !slices.Contains(Modes, m) {
			return nil, fmt.Errorf("mode %q: want all or a list of %s", m, strings.Join(Modes, ", "))
		}
		out = append(out, m)
	}
	return out, nil
}

// RequirementText returns the section of SPEC.md that states one
// requirement: its heading, fields and statement.
func RequirementText(id string) (string, bool) {
	lines := strings.Split(specText, "\n")
	var out []string
	in := false
	for _, l := range lines {
		if strings.HasPrefix(l, "### "+id+":") {
			in = true
		} else if in && (strings.HasPrefix(l, "### ") || strings.HasPrefix(l, "## ")) {
			break
		}
		if in {
			out = append(out, l)
		}
	}
	if !in {
		return "", false
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n", true
}
