package watch

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// MatchType is the operator of a label matcher.
type MatchType string

// The operators of Alertmanager's matchers.
const (
	MatchEqual     MatchType = "="
	MatchNotEqual  MatchType = "!="
	MatchRegexp    MatchType = "=~"
	MatchNotRegexp MatchType = "!~"
)

// Matcher is one label matcher, name OP "value", as Alertmanager writes them
// in routes and silences.
type Matcher struct {
	Name  string
	Type  MatchType
	Value string
	re    *regexp.Regexp
}

// Matchers match a label set when every one of them does.
type Matchers []Matcher

// maxMatchers bounds a --webhook-match: a person types them.
const maxMatchers = 64

// ParseMatchers reads a comma-separated list of matchers in Alertmanager's
// syntax, optionally in braces: alertname=~"SnapdiagSyn.*",instance="h:9").
// Values are double-quoted with \" \\ and \n escapes, or bare up to the next
// comma; regular expressions are anchored at both ends, as Alertmanager's
// are. An empty list matches every alert.
func ParseMatchers(s string) (Matchers, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		if !strings.HasSuffix(s, "}") {
			return nil, errors.New("matchers: { without }")
		}
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	var out Matchers
	for s != "" {
		if len(out) == maxMatchers {
			return nil, fmt.Errorf("matchers: more than %d", maxMatchers)
		}
		m, rest, err := parseMatcher(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return nil, fmt.Errorf("matchers: %q after %s: want a comma", rest, m)
		}
		s = strings.TrimSpace(rest[1:])
		if s == "" {
			// A trailing comma is accepted, as Alertmanager does.
			break
		}
	}
	return out, nil
}

// parseMatcher reads one matcher at the start of s and returns the rest.
func parseMatcher(s string) (Matcher, string, error) {
	i := 0
	for i < len(s) && isLabelChar(s[i], i == 0) {
		i++
	}
	if i == 0 {
		return Matcher{}, "", fmt.Errorf("matchers: %q: want a label name", s)
	}
	m := Matcher{Name: s[:i]}
	rest := strings.TrimLeft(s[i:], " \t")
	for _, op := range []MatchType{MatchRegexp, MatchNotRegexp, MatchNotEqual, MatchEqual} {
		if strings.HasPrefix(rest, string(op)) {
			m.Type = op
			rest = rest[len(op):]
			break
		}
	}
	if m.Type == "" {
		return Matcher{}, "", fmt.Errorf("matchers: %s: want =, !=, =~ or !~ after the name", m.Name)
	}
	rest = strings.TrimLeft(rest, " \t")
	var err error
	if strings.HasPrefix(rest, `"`) {
		m.Value, rest, err = unquote(rest)
		if err != nil {
			return Matcher{}, "", fmt.Errorf("matchers: %s: %w", m.Name, err)
		}
	} else {
		end := strings.IndexAny(rest, ",}")
		if end < 0 {
			end = len(rest)
		}
		m.Value, rest = strings.TrimSpace(rest[:end]), rest[end:]
	}
	if m.Type == MatchRegexp || m.Type == MatchNotRegexp {
		m.re, err = regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return Matcher{}, "", fmt.Errorf("matchers: %s: %w", m.Name, err)
		}
	}
	return m, rest, nil
}

// unquote reads a double-quoted value at the start of s.
func unquote(s string) (string, string, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 == len(s) {
				return "", "", errors.New("unterminated quoted value")
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case '"', '\\':
				b.WriteByte(s[i])
			default:
				return "", "", fmt.Errorf("unknown escape \\%c", s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("unterminated quoted value")
}

func isLabelChar(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

// Matches reports whether the label set matches m; a label the set lacks
// has the empty value, as in Alertmanager.
func (m Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re.MatchString(v)
	default:
		return !m.re.MatchString(v)
	}
}

// String writes m back in the syntax ParseMatchers reads.
func (m Matcher) String() string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return m.Name + string(m.Type) + `"` + r.Replace(m.Value) + `"`
}

// Matches reports whether every matcher matches labels.
func (ms Matchers) Matches(labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

// String writes the matchers back in the syntax ParseMatchers reads.
func (ms Matchers) String() string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, ",")
}
