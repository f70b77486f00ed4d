// Package keepalived converts keepalived configuration into Vigil VirtualIPs.
//
// Parse reads a keepalived.conf into a tree of statements with their line numbers; Convert
// maps the trees of one or more hosts to VirtualIPs, with a Note on every setting Vigil does
// not take as it is; WriteYAML prints them with those notes as comments. Everything here is
// pure: the only I/O is the io.Writer given to WriteYAML.
package keepalived

import (
	"errors"
	"fmt"
	"strings"
)

// Pos is where a statement is written: a file name and a 1-based line number.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Node is one statement of a keepalived.conf: a keyword, its arguments and, for a block, the
// statements between its braces.
type Node struct {
	Pos     Pos
	Keyword string
	// Args are the words after the keyword, without the quotes of quoted words.
	Args []string
	// Raw is the text after the keyword as written, quotes kept: keepalived splits a
	// script's command line itself, so the converter needs it unsplit.
	Raw      string
	Block    bool
	Children []*Node
	// Host is the config id of a line written "@id ...": keepalived reads that line only on
	// the host with that id, or, with NotHost ("@^id ..."), on every other host.
	Host    string
	NotHost bool
}

// Config is a parsed keepalived.conf.
type Config struct {
	File  string
	Nodes []*Node
}

// SyntaxError is a configuration keepalived could not read as intended.
type SyntaxError struct {
	Pos Pos
	Msg string
}

func (e *SyntaxError) Error() string { return e.Pos.String() + ": " + e.Msg }

// maxDepth bounds nesting. keepalived's deepest block, virtual_server > real_server >
// HTTP_GET > url, is four levels; anything much deeper is a broken file, not a config.
const maxDepth = 16

// topLevelOnly are the blocks keepalived accepts only at the top. Finding one inside another
// block almost always means a '}' is missing above it, and saying so beats a confusing
// conversion.
var topLevelOnly = map[string]bool{
	"global_defs": true, "vrrp_instance": true, "vrrp_script": true, "vrrp_sync_group": true,
	"virtual_server": true, "virtual_server_group": true,
}

// Parse reads a keepalived.conf the way keepalived does: '#' and '!' start a comment outside
// double quotes, a double-quoted string is one word, '{' and '}' open and close blocks
// wherever they appear outside quotes (a '{' may also start the line after its keyword), and
// a line starting "@id" or "@^id" applies to some hosts only. file names the input in
// positions and errors.
func Parse(file string, src []byte) (*Config, error) {
	p := &parser{file: file}
	for i, line := range strings.Split(string(src), "\n") {
		if err := p.line(i+1, line); err != nil {
			return nil, err
		}
	}
	if len(p.open) > 0 {
		n := p.open[len(p.open)-1]
		return nil, &SyntaxError{Pos: n.Pos, Msg: fmt.Sprintf("unbalanced '{': %s is never closed", describe(n))}
	}
	return &Config{File: file, Nodes: p.top}, nil
}

// parser builds the statement tree line by line.
type parser struct {
	file string
	top  []*Node
	open []*Node // the blocks not closed yet, innermost last
	// pending is the last statement of the previous non-empty line, which a '{' starting
	// the next line opens as a block.
	pending *Node
}

// line adds the statements of one line.
func (p *parser) line(number int, text string) error {
	text = strings.TrimSpace(decomment(text))
	if text == "" {
		return nil // keepalived skips empty lines, so a '{' may still follow
	}
	pos := Pos{File: p.file, Line: number}
	pending := p.pending
	p.pending = nil
	host, notHost, text, ok := splitHost(text)
	if !ok {
		return nil // "@id" with nothing after it: keepalived drops the line
	}
	tokens, err := tokenize(text)
	if err != nil {
		return &SyntaxError{Pos: pos, Msg: err.Error()}
	}
	var words []token
	for i, t := range tokens {
		switch t.kind {
		case wordToken:
			words = append(words, t)
			continue
		case openToken:
			err = p.openBlock(pos, p.statement(pos, text, words, host, notHost), pending, i == 0)
		case closeToken:
			if err = p.add(p.statement(pos, text, words, host, notHost)); err == nil {
				err = p.closeBlock(pos)
			}
		}
		if err != nil {
			return err
		}
		words = nil
	}
	last := p.statement(pos, text, words, host, notHost)
	p.pending = last
	return p.add(last)
}

// statement makes a Node of the words of one statement; nil when there are none.
func (p *parser) statement(pos Pos, text string, words []token, host string, notHost bool) *Node {
	if len(words) == 0 {
		return nil
	}
	n := &Node{Pos: pos, Keyword: words[0].text, Host: host, NotHost: notHost}
	for _, w := range words[1:] {
		n.Args = append(n.Args, w.text)
	}
	n.Raw = strings.TrimSpace(text[words[0].end:words[len(words)-1].end])
	return n
}

// add appends a statement to the innermost open block, or to the top level.
func (p *parser) add(n *Node) error {
	if n == nil {
		return nil
	}
	if len(p.open) == 0 {
		p.top = append(p.top, n)
		return nil
	}
	parent := p.open[len(p.open)-1]
	if topLevelOnly[n.Keyword] {
		return &SyntaxError{Pos: n.Pos, Msg: fmt.Sprintf("%s inside %s (line %d): a '}' is missing before it",
			describe(n), describe(parent), parent.Pos.Line)}
	}
	parent.Children = append(parent.Children, n)
	return nil
}

// openBlock opens n as a block or, for a '{' that starts a line, the pending statement.
func (p *parser) openBlock(pos Pos, n, pending *Node, startsLine bool) error {
	if n == nil {
		if !startsLine || pending == nil || pending.Block {
			return &SyntaxError{Pos: pos, Msg: "'{' without a keyword before it"}
		}
		n = pending
	} else if err := p.add(n); err != nil {
		return err
	}
	if len(p.open) >= maxDepth {
		return &SyntaxError{Pos: pos, Msg: fmt.Sprintf("blocks nested more than %d deep", maxDepth)}
	}
	n.Block = true
	p.open = append(p.open, n)
	return nil
}

// closeBlock closes the innermost open block.
func (p *parser) closeBlock(pos Pos) error {
	if len(p.open) == 0 {
		return &SyntaxError{Pos: pos, Msg: "unbalanced '}'"}
	}
	p.open = p.open[:len(p.open)-1]
	return nil
}

// describe names a statement in messages: its keyword and first argument.
func describe(n *Node) string {
	if len(n.Args) == 0 {
		return n.Keyword
	}
	return n.Keyword + " " + n.Args[0]
}

// decomment cuts a line at its comment, an unquoted '#' or '!', and turns the escapes "\#"
// and "\!" into the characters, as keepalived does.
func decomment(line string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\\' && i+1 < len(line):
			i++
			if quoted || (line[i] != '#' && line[i] != '!') {
				b.WriteByte(c)
			}
			c = line[i]
		case !quoted && (c == '#' || c == '!'):
			return b.String()
		}
		b.WriteByte(c)
	}
	return b.String()
}

// splitHost takes the "@id" or "@^id" prefix off a line. ok is false when nothing follows
// the id: keepalived then ignores the line.
func splitHost(line string) (host string, notHost bool, rest string, ok bool) {
	if !strings.HasPrefix(line, "@") {
		return "", false, line, true
	}
	id := line[1:]
	if strings.HasPrefix(id, "^") {
		notHost, id = true, id[1:]
	}
	i := strings.IndexAny(id, " \t")
	if i < 0 {
		return "", false, "", false
	}
	return id[:i], notHost, strings.TrimSpace(id[i:]), true
}

// wordBreaks end an unquoted word.
const wordBreaks = " \t\f\v\r{}\""

type tokenKind int

const (
	wordToken tokenKind = iota
	openToken
	closeToken
)

// token is a word or a brace of a line; end is the offset just after it, quotes included.
type token struct {
	kind tokenKind
	text string
	end  int
}

// tokenize splits a decommented line into words and braces.
func tokenize(line string) ([]token, error) {
	var tokens []token
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case strings.IndexByte(" \t\f\v\r", c) >= 0:
			i++
		case c == '{' || c == '}':
			kind := openToken
			if c == '}' {
				kind = closeToken
			}
			tokens = append(tokens, token{kind: kind, text: string(c), end: i + 1})
			i++
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				return nil, errors.New("unterminated quoted string")
			}
			tokens = append(tokens, token{kind: wordToken, text: line[i+1 : i+1+j], end: i + j + 2})
			i += j + 2
		default:
			j := i
			for j < len(line) && strings.IndexByte(wordBreaks, line[j]) < 0 {
				j++
			}
			tokens = append(tokens, token{kind: wordToken, text: line[i:j], end: j})
			i = j
		}
	}
	return tokens, nil
}
