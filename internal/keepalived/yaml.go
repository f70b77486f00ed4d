package keepalived

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	vigilv1 "vigil.dev/vigil/api/v1alpha1"
)

// commentWidth is where comment lines wrap.
const commentWidth = 100

// WriteYAML prints the VirtualIPs as a YAML stream for kubectl apply: a header with the
// inputs and the file-wide notes, then each VirtualIP after a comment block with its
// keepalived origin and notes. Fields keep the order of the API types (address first), which
// reads better than the alphabetical order of a generic marshaller.
func WriteYAML(w io.Writer, r Result) error {
	var b strings.Builder
	writeHeader(&b, r)
	for _, v := range r.VirtualIPs {
		b.WriteString("---\n")
		writeComment(&b, "", "From "+v.From)
		for _, n := range v.Notes {
			writeNote(&b, n)
		}
		body, err := objectYAML(v.Object)
		if err != nil {
			return fmt.Errorf("writing VirtualIP %s: %w", v.Object.Name, err)
		}
		b.WriteString(body)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing YAML: %w", err)
	}
	return nil
}

// writeHeader writes what was converted and the notes about the files as a whole.
func writeHeader(b *strings.Builder, r Result) {
	writeComment(b, "", "VirtualIPs converted from keepalived by `vigil convert keepalived`.")
	writeComment(b, "", "Each comment names a keepalived setting that Vigil does not take as it is, and why: read them before applying.")
	var inputs []string
	for _, s := range r.Sources {
		in := "(none)"
		if s.Config != nil {
			in = s.Config.File
		}
		if s.Node != "" {
			in += " (node " + s.Node + ")"
		}
		inputs = append(inputs, in)
	}
	writeComment(b, "", "Input: "+strings.Join(inputs, ", "))
	if len(r.VirtualIPs) == 0 {
		writeComment(b, "", "No VirtualIP: the input has no vrrp_instance with a usable virtual_ipaddress.")
	}
	if len(r.Notes) > 0 {
		writeComment(b, "", "Not converted:")
	}
	for _, n := range r.Notes {
		writeNote(b, n)
	}
}

// writeNote writes "setting (file:line): text" as an indented comment.
func writeNote(b *strings.Builder, n Note) {
	text := n.Setting
	if len(n.At) > 0 {
		text += " (" + positions(n.At) + ")"
	}
	writeComment(b, "  ", text+": "+n.Text)
}

// writeComment writes text as comment lines wrapped at commentWidth; indent starts the
// first line, and continuation lines are indented two more.
func writeComment(b *strings.Builder, indent, text string) {
	line := "#" + " " + indent
	empty := true
	for _, word := range strings.Fields(oneLine(text)) {
		if !empty && len(line)+1+len(word) > commentWidth {
			b.WriteString(line + "\n")
			line, empty = "# "+indent+"  ", true
		}
		if !empty {
			line += " "
		}
		line += word
		empty = false
	}
	b.WriteString(strings.TrimRight(line, " ") + "\n")
}

// document is a VirtualIP as written: only the fields a new object has.
type document struct {
	APIVersion string                `json:"apiVersion"`
	Kind       string                `json:"kind"`
	Metadata   metav1.ObjectMeta     `json:"metadata"`
	Spec       vigilv1.VirtualIPSpec `json:"spec"`
}

// objectYAML writes a VirtualIP as block YAML, fields in the order of the Go types.
func objectYAML(v vigilv1.VirtualIP) (string, error) {
	raw, err := json.Marshal(document{APIVersion: v.APIVersion, Kind: v.Kind, Metadata: v.ObjectMeta, Spec: v.Spec})
	if err != nil {
		return "", fmt.Errorf("encoding: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	root, err := decodeValue(dec)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	writeMap(&b, root, 0)
	return b.String(), nil
}

// value is a JSON value that keeps the order of its keys.
type value struct {
	scalar string // YAML text of a scalar
	isMap  bool
	isList bool
	keys   []string
	items  []*value // map values (by keys) or list items
}

func (v *value) empty() bool { return (v.isMap || v.isList) && len(v.items) == 0 }

// decodeValue reads one JSON value.
func decodeValue(dec *json.Decoder) (*value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		return decodeComposite(dec, t)
	case string:
		return &value{scalar: yamlString(t)}, nil
	case json.Number:
		return &value{scalar: t.String()}, nil
	case bool:
		return &value{scalar: fmt.Sprint(t)}, nil
	case nil:
		return &value{scalar: "null"}, nil
	}
	return nil, fmt.Errorf("decoding: unexpected token %v", tok)
}

// decodeComposite reads the rest of an object or array whose opening delimiter was read.
func decodeComposite(dec *json.Decoder, open json.Delim) (*value, error) {
	v := &value{isMap: open == '{', isList: open == '['}
	for dec.More() {
		if v.isMap {
			tok, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("decoding: %w", err)
			}
			key, ok := tok.(string)
			if !ok {
				return nil, errors.New("decoding: object key is not a string")
			}
			v.keys = append(v.keys, key)
		}
		item, err := decodeValue(dec)
		if err != nil {
			return nil, err
		}
		v.items = append(v.items, item)
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return nil, fmt.Errorf("decoding: %w", err)
	}
	return v, nil
}

// writeMap writes the entries of a map at an indentation.
func writeMap(b *strings.Builder, m *value, indent int) {
	pad := strings.Repeat(" ", indent)
	for i, key := range m.keys {
		b.WriteString(pad + yamlString(key) + ":")
		writeChild(b, m.items[i], indent+2)
	}
}

// writeChild writes a value after "key:" or "-".
func writeChild(b *strings.Builder, v *value, indent int) {
	switch {
	case v.empty() && v.isMap:
		b.WriteString(" {}\n")
	case v.empty():
		b.WriteString(" []\n")
	case v.isMap:
		b.WriteString("\n")
		writeMap(b, v, indent)
	case v.isList:
		b.WriteString("\n")
		writeList(b, v, indent)
	default:
		b.WriteString(" " + v.scalar + "\n")
	}
}

// writeList writes list items at an indentation; a map item starts on the "- " line.
func writeList(b *strings.Builder, l *value, indent int) {
	pad := strings.Repeat(" ", indent)
	for _, item := range l.items {
		if !item.isMap || item.empty() {
			b.WriteString(pad + "-")
			writeChild(b, item, indent+2)
			continue
		}
		var inner strings.Builder
		writeMap(&inner, item, indent+2)
		b.WriteString(pad + "- " + inner.String()[indent+2:])
	}
}

// yamlString writes a string plain when YAML reads it back as the same string, and
// double-quoted (JSON syntax, which YAML reads) otherwise.
func yamlString(s string) string {
	if plainSafe(s) {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// plainSafe reports whether s can be written unquoted: made of characters that are never
// YAML syntax in this position, and read back as the same string, not a number, boolean
// or null.
func plainSafe(s string) bool {
	if s == "" || strings.IndexByte("-.:", s[0]) >= 0 || strings.HasSuffix(s, ":") {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && !strings.ContainsRune("-._/:", r) {
			return false
		}
	}
	if surelyString(s) {
		return true
	}
	if strings.Contains(s, ":") && strings.Trim(s, "0123456789:._") == "" {
		return false // YAML 1.1 reads 1:20 as a number (base 60); some tools still do
	}
	var back map[string]any
	if err := yaml.Unmarshal([]byte("k: "+s), &back); err != nil {
		return false
	}
	got, ok := back["k"].(string)
	return ok && got == s
}

// yamlWords are the plain words YAML reads as booleans or null.
var yamlWords = map[string]bool{"y": true, "yes": true, "n": true, "no": true, "true": true, "false": true,
	"on": true, "off": true, "null": true}

// goDuration is the syntax of a Go duration as metav1.Duration writes it.
var goDuration = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`)

// surelyString decides the common cases without parsing: YAML reads a plain scalar of the
// safe characters as a string when it starts with a letter and is not a boolean or null
// word, when it holds a '/' or "::" (paths, label keys, IPv6), or when it is a Go duration
// or a dotted IPv4 address. Everything else is left to the parser.
func surelyString(s string) bool {
	c := s[0]
	letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	switch {
	case letter:
		return !yamlWords[strings.ToLower(s)]
	case strings.Contains(s, "/"), strings.Contains(s, "::"), goDuration.MatchString(s):
		return true
	}
	addr, err := netip.ParseAddr(s)
	return err == nil && addr.Is4()
}
