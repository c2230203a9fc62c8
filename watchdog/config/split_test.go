package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"java -jar /app/app.jar", []string{"java", "-jar", "/app/app.jar"}},
		{"  spaced\t\tout  ", []string{"spaced", "out"}},
		{`python3 "my script.py"`, []string{"python3", "my script.py"}},
		{`echo 'it''s'`, []string{"echo", "its"}},
		{`echo 'a "b" $c'`, []string{"echo", `a "b" $c`}},
		{`echo "a \"b\" \$c \\ \x"`, []string{"echo", `a "b" $c \ \x`}},
		{`back\ slash`, []string{"back slash"}},
		{`empty "" ''`, []string{"empty", "", ""}},
		{`con"cat"'ed'`, []string{"concated"}},
		{"line\\\ncontinued", []string{"linecontinued"}},
		{`$HOME ~ *`, []string{"$HOME", "~", "*"}},
		{"ünïcode ☃", []string{"ünïcode", "☃"}},
		{"", nil},
	} {
		got, err := SplitCommand(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestSplitCommandErrors(t *testing.T) {
	for in, want := range map[string]string{
		`echo 'open`: "the single quote at position 6 is not closed",
		`echo "open`: "the double quote at position 6 is not closed",
		`echo "a\"`:  "the double quote at position 6 is not closed",
		`trailing \`: "it ends with a lone backslash",
	} {
		_, err := SplitCommand(in)
		if err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
}
