package config_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// javaToGo translates a CloudFormation AllowedPattern (java.util.regex,
// matched against the whole value) into a Go regexp that accepts the same
// values, or refuses a construct it cannot translate faithfully (so a new
// pattern using one fails the test rather than being checked wrongly).
func javaToGo(p string) (*regexp.Regexp, error) {
	const space = `\t\n\x0B\f\r ` // Java's \s; Go's lacks \x0B
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 >= len(p) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			e := p[i]
			switch {
			case e == 's' && inClass:
				b.WriteString(space)
			case e == 's':
				b.WriteString(`[` + space + `]`)
			case e == 'S' && !inClass:
				b.WriteString(`[^` + space + `]`)
			case strings.IndexByte(`dDwWbBtnrfx.\\[](){}*+?|^$/-&"'<>@#%:=!,;`+"`~", e) >= 0:
				b.WriteByte('\\')
				b.WriteByte(e)
			default:
				return nil, fmt.Errorf(`\%c is not translated (Java and Go differ or Go lacks it)`, e)
			}
		case inClass && c == '[':
			return nil, fmt.Errorf("nested character classes are Java-only")
		case inClass && c == '&' && i+1 < len(p) && p[i+1] == '&':
			return nil, fmt.Errorf("class intersection && is Java-only")
		case inClass && c == ']':
			inClass = false
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			// A ] right after [ or [^ is a literal in both.
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteString(`\]`)
				i++
			}
		case inClass:
			b.WriteByte(c)
		case c == '(' && strings.HasPrefix(p[i:], "(?") && !strings.HasPrefix(p[i:], "(?:"):
			return nil, fmt.Errorf("group %q is not translated (lookaround, atomic or flags)", p[i:min(len(p), i+4)])
		case (c == '*' || c == '+' || c == '?' || c == '}') && i+1 < len(p) && p[i+1] == '+':
			return nil, fmt.Errorf("possessive quantifiers are Java-only")
		case c == '.':
			// Java's . refuses every line terminator, Go's only \n.
			b.WriteString(`[^\n\r\x{85}\x{2028}\x{2029}]`)
		default:
			b.WriteByte(c)
		}
	}
	if inClass {
		return nil, fmt.Errorf("unterminated character class")
	}
	return regexp.Compile(`^(?:` + b.String() + `)$`)
}

// javaMatches runs each (pattern, value) pair through java.util.regex's
// Pattern.matches, as CloudFormation checks an AllowedPattern, in one run of
// tools/cfn/AllowedPattern.java. It returns nil when no java is installed.
func javaMatches(root string, pairs [][2]string) ([]bool, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, nil
	}
	var in bytes.Buffer
	enc := base64.StdEncoding
	for _, p := range pairs {
		fmt.Fprintf(&in, "%s %s\n", enc.EncodeToString([]byte(p[0])), enc.EncodeToString([]byte(p[1])))
	}
	cmd := exec.Command(java, filepath.Join(root, "tools", "cfn", "AllowedPattern.java"))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("java: %v: %s", err, stderr.String())
	}
	var res []bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "E ") {
			return nil, fmt.Errorf("pattern %q: %s", pairs[len(res)][0], line[2:])
		}
		res = append(res, line == "1")
	}
	if len(res) != len(pairs) {
		return nil, fmt.Errorf("java answered %d of %d", len(res), len(pairs))
	}
	return res, nil
}
