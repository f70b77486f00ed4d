package keepalived

import (
	"fmt"
	"strings"
	"testing"
)

// dump writes a tree one statement a line: "line: keyword [args] {", children indented.
func dump(nodes []*Node, indent string, b *strings.Builder) {
	for _, n := range nodes {
		fmt.Fprintf(b, "%s%d: %s %q", indent, n.Pos.Line, n.Keyword, n.Args)
		if n.Host != "" {
			fmt.Fprintf(b, " @%s not=%v", n.Host, n.NotHost)
		}
		if n.Block {
			b.WriteString(" {")
		}
		b.WriteString("\n")
		dump(n.Children, indent+"  ", b)
	}
}

// keepalived's syntax, as its parser reads it (lib/parser.c: read_line, decomment,
// alloc_strvec): every form below must give the same tree a plain layout would.
func TestParseReadsKeepalivedSyntax(t *testing.T) {
	src := strings.Join([]string{
		`! comment`,
		`# another comment`,
		`vrrp_script "chk web" {   # a quoted name`,
		`    script "/usr/bin/curl -sf http://x/#y"  ! the # in quotes stays`,
		`    interval 2`,
		`}`,
		`vrrp_instance VI_1`,
		``,
		`{`,
		`    virtual_ipaddress { 10.0.0.1/24 dev eth0 }`,
		`    track_script { chk_a`,
		`        chk_b weight -2 }`,
		`@lb-a    priority 150`,
		`@^lb-a   priority 100`,
		`    notify "/bin/a b"word\#not-a-comment`,
		`    authentication {`,
		"\tauth_type PASS\r",
		`    }}`,
	}, "\n")
	cfg, err := Parse("t.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	dump(cfg.Nodes, "", &b)
	want := strings.Join([]string{
		`3: vrrp_script ["chk web"] {`,
		`  4: script ["/usr/bin/curl -sf http://x/#y"]`,
		`  5: interval ["2"]`,
		`7: vrrp_instance ["VI_1"] {`,
		`  10: virtual_ipaddress [] {`,
		`    10: 10.0.0.1/24 ["dev" "eth0"]`,
		`  11: track_script [] {`,
		`    11: chk_a []`,
		`    12: chk_b ["weight" "-2"]`,
		`  13: priority ["150"] @lb-a not=false`,
		`  14: priority ["100"] @lb-a not=true`,
		`  15: notify ["/bin/a b" "word#not-a-comment"]`,
		`  16: authentication [] {`,
		`    17: auth_type ["PASS"]`,
		``,
	}, "\n")
	if b.String() != want {
		t.Errorf("tree:\n%s\nwant:\n%s", b.String(), want)
	}
	script := cfg.Nodes[0].Children[0]
	if script.Raw != `"/usr/bin/curl -sf http://x/#y"` {
		t.Errorf("Raw of the script line is %q", script.Raw)
	}
}

// A syntax error stops the conversion with one line naming the file and line.
func TestParseErrorsNameTheLine(t *testing.T) {
	deep := strings.Repeat("a {\n", maxDepth+1)
	cases := []struct{ name, src, want string }{
		{"extra close", "vrrp_instance A {\n  state MASTER\n}\n}\n", "t.conf:4: unbalanced '}'"},
		{"close on a statement line", "global_defs {\n  router_id x }}\n", "t.conf:2: unbalanced '}'"},
		{"never closed", "vrrp_instance A {\n  state MASTER\n", "t.conf:1: unbalanced '{': vrrp_instance A is never closed"},
		{"inner never closed", "global_defs {\n}\nvrrp_script s {\n  script \"x\"\n  user {\n}\n",
			"t.conf:3: unbalanced '{': vrrp_script s is never closed"},
		{"unterminated quote", "vrrp_script s {\n  script \"curl http://x\n}\n", "t.conf:2: unterminated quoted string"},
		{"lone brace", "{\n}\n", "t.conf:1: '{' without a keyword before it"},
		{"brace after a block", "a {\n}\n{\n}\n", "t.conf:3: '{' without a keyword before it"},
		{"brace mid-line", "a b } {\n", "t.conf:1: unbalanced '}'"},
		{"missing close before next instance", "vrrp_instance A {\n  virtual_ipaddress {\n    10.0.0.1\n  }\n\nvrrp_instance B {\n}\n}\n",
			"t.conf:6: vrrp_instance B inside vrrp_instance A (line 1): a '}' is missing before it"},
		{"too deep", deep, fmt.Sprintf("t.conf:%d: blocks nested more than %d deep", maxDepth+1, maxDepth)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.conf", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error %q, want %q", err, tc.want)
			}
		})
	}
}
