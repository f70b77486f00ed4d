package keepalived

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// shellWord is one word of a command line; op marks an unquoted shell operator such as |,
// && or 2>, and expands a word a shell would substitute ($VAR, $(...), `...`).
type shellWord struct {
	text    string
	op      bool
	expands bool
}

// operatorChars make up shell operators when unquoted.
const operatorChars = "|&;<>()"

// shellSplit splits a command line into words as a POSIX shell would, without running any
// expansion: single quotes, double quotes and backslashes quote, unquoted operator
// characters form operator words. keepalived splits scripts the same way (without
// operators: it runs no shell, so they only matter inside "sh -c").
func shellSplit(s string) ([]shellWord, error) {
	var words []shellWord
	var cur strings.Builder
	inWord, expands := false, false
	flush := func() {
		if inWord {
			words = append(words, shellWord{text: cur.String(), expands: expands})
		}
		cur.Reset()
		inWord, expands = false, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush()
		case c == '\'' || c == '"':
			end, exp, err := quoted(s, i, &cur)
			if err != nil {
				return nil, err
			}
			i, inWord, expands = end, true, expands || exp
		case c == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
			inWord = true
		case strings.IndexByte(operatorChars, c) >= 0:
			fd := ""
			if inWord && (c == '<' || c == '>') && isDigits(cur.String()) {
				fd, inWord = cur.String(), false // "2>": the digits name a file descriptor
			}
			flush()
			j := i
			for j < len(s) && strings.IndexByte(operatorChars, s[j]) >= 0 {
				j++
			}
			words = append(words, shellWord{text: fd + s[i:j], op: true})
			i = j - 1
		default:
			expands = expands || c == '$' || c == '`'
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, nil
}

// quoted copies the quoted string starting at s[start] into cur and returns the index of
// its closing quote, and whether a shell would expand something in it.
func quoted(s string, start int, cur *strings.Builder) (end int, expands bool, err error) {
	q := s[start]
	for i := start + 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return i, expands, nil
		case q == '"' && c == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0:
			i++
			cur.WriteByte(s[i])
		default:
			expands = expands || (q == '"' && (c == '$' || c == '`'))
			cur.WriteByte(c)
		}
	}
	return 0, false, fmt.Errorf("unterminated %c quote", q)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

var (
	// discardRedirect sends output nowhere; it does not change what a check does.
	discardRedirect = regexp.MustCompile(`^([0-9]*|&)>>?$`)
	// dupRedirect joins output streams (2>&1), which does not change what a check does either.
	dupRedirect = regexp.MustCompile(`^[0-9]*>&$`)
	// openRedirect opens a file for reading or writing: with /dev/tcp/HOST/PORT, bash
	// connects to HOST:PORT, a TCP check.
	openRedirect = regexp.MustCompile(`^[0-9]*(<|>|<>)$`)
)

// command is a command line reduced to its arguments, with what its redirections do.
type command struct {
	argv []string
	// devTCP is HOST/PORT of a bash redirection from or to /dev/tcp/HOST/PORT.
	devTCP string
}

// simplify drops the shell syntax that does not change what a check does (redirections of
// output, "|| exit 1") and refuses the rest.
func simplify(words []shellWord) (command, error) {
	var c command
	for i := 0; i < len(words); i++ {
		w := words[i]
		next := ""
		if i+1 < len(words) && !words[i+1].op {
			next = words[i+1].text
		}
		switch {
		case w.expands:
			return command{}, fmt.Errorf("the shell would expand %q", w.text)
		case !w.op:
			c.argv = append(c.argv, w.text)
			continue
		case discardRedirect.MatchString(w.text) && next == "/dev/null",
			dupRedirect.MatchString(w.text) && isDigits(next):
		case openRedirect.MatchString(w.text) && strings.HasPrefix(next, "/dev/tcp/"):
			c.devTCP = strings.TrimPrefix(next, "/dev/tcp/")
		case w.text == "||" && exitsNonZero(words[i+1:]):
			return c, nil // "cmd || exit 1" fails exactly when cmd fails
		default:
			return command{}, fmt.Errorf("shell syntax %q (pipes, lists, redirections) cannot be mapped", w.text)
		}
		i++ // the operator's operand
	}
	return c, nil
}

// exitsNonZero reports whether words are "exit" with a non-zero status (or none, which
// keeps the failing status).
func exitsNonZero(words []shellWord) bool {
	switch {
	case len(words) == 1:
		return words[0].text == "exit"
	case len(words) == 2:
		return words[0].text == "exit" && isDigits(words[1].text) && strings.Trim(words[1].text, "0") != ""
	}
	return false
}

// errNoCommand is the reason for an empty script.
var errNoCommand = errors.New("no command")
